"""kbench history: synthetic nightly directories (built from a real row) and the committed directory
of real nights with an injected slowdown (tests/data/nightly/README.md)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kbench.results import stats
from kbench.cli import main
from kbench.nightly.history import STEP_COLUMNS, load_history
from nightly_fixtures import write_nights as _write_nights

DATA = Path(__file__).parent / "data" / "nightly"
HISTORY = DATA / "history"


def _noisy(level, n, sigma, seed):
    return list(level * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n)))


def test_flat_and_noisy_flat_series_have_no_step(tmp_path):
    directory = _write_nights(tmp_path / "r", {0: [100.0] * 10, 1: _noisy(50.0, 10, 0.04, 1)})
    history = load_history(directory)
    assert len(history.nights) == 10 and len(history.series) == 2
    assert history.steps() == []
    assert "0 steps" in history.summary()


def test_one_step_reported_with_night_commit_and_size(tmp_path, capsys):
    values = _noisy(100.0, 6, 0.01, 2) + _noisy(70.0, 5, 0.01, 3)
    directory = _write_nights(tmp_path / "r", {0: _noisy(100.0, 11, 0.01, 4), 5: values},
                              commits={5: "aaaa", 6: "bbbb"})
    (step,) = load_history(directory).steps()
    assert (step["model"], step["batch_size"], step["mode"]) == ("resnet18", "8", "infer")
    assert (step["night"], step["commit"]) == ("2026-10-07", "bbbb")
    assert (step["previous_night"], step["previous_commit"]) == ("2026-10-06", "aaaa")
    assert step["direction"] == stats.SLOWER
    assert step["change"] == pytest.approx(-0.30, abs=0.03)
    assert step["noise_multiple"] > stats.DEFAULT_NOISE_FACTOR and step["p_value"] < 0.01
    assert step["note"] == ""
    assert main(["history", str(directory), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["rows"]) == 1 and list(document["rows"][0]) == list(STEP_COLUMNS)
    assert document["nights"][0] == "2026-10-01"


def test_a_library_upgrade_is_noted_on_its_step(tmp_path):
    def edit(night, row):
        row["keras_version"] = "3.15.1" if night < 5 else "3.16.0"
    directory = _write_nights(tmp_path / "r", {4: [100.0] * 5 + [80.0] * 5}, edit=edit)
    (step,) = load_history(directory).steps()
    assert step["note"] == "environment changed: keras_version 3.15.1 -> 3.16.0"


def test_nights_without_an_ok_row_are_gaps(tmp_path):
    def edit(night, row):
        if night == 3:
            row.update(status="timeout", samples_per_s="", samples_per_s_rounds="")
    directory = _write_nights(tmp_path / "r", {0: [100.0] * 8}, edit=edit)
    (series,) = load_history(directory).series
    assert [p.night for p in series.points] == [f"2026-10-{n:02d}" for n in (1, 2, 3, 5, 6, 7, 8)]


def test_only_files_of_the_tag_are_read(tmp_path):
    directory = _write_nights(tmp_path / "r", {0: [100.0] * 4})
    _write_nights(directory, {0: [10.0] * 6}, tag="sweep-full")
    (directory / "notes.csv").write_text("not,a,sweep\n")
    (directory / "profile-2026-10-01.csv").write_text("model\nlenet5\n")
    assert len(load_history(directory).nights) == 4
    assert len(load_history(directory, tag="sweep-full").nights) == 6


def test_series_listing(capsys):
    assert main(["history", str(HISTORY), "--series", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model,input,") and len(lines) == 9


# ----------------------------------------------------------------------------- real nights

def test_real_nights_find_the_injected_step():
    history = load_history(HISTORY)
    assert len(history.nights) == 8 and len(history.series) == 8
    steps = {(s["model"], s["batch_size"], s["mode"]): s for s in history.steps()}
    injected = steps.pop(("resnet18", "8", "train"))
    assert injected["night"] == "2026-11-05"
    with open(HISTORY / "sweep-2026-11-05.csv", newline="") as f:
        assert injected["commit"] == next(csv.DictReader(f))["git_commit"]
    with open(HISTORY / "sweep-2026-11-04.csv", newline="") as f:
        assert injected["previous_commit"] == next(csv.DictReader(f))["git_commit"]
    assert injected["direction"] == stats.SLOWER and injected["change"] <= -0.3
    assert (injected["points_before"], injected["points_after"]) == (4, 4)
    # Two more steps that no code made: the other jobs' load moved while these configurations'
    # nights were measured (each configuration's 8 nights ran back to back), and a step of the
    # whole machine is a step. Recorded as what a shared machine does to a history.
    assert {key: (s["direction"], s["night"]) for key, s in steps.items()} == {
        ("lenet5", "8", "infer"): (stats.FASTER, "2026-11-04"),
        ("resnet18", "8", "infer"): (stats.SLOWER, "2026-11-06")}


def test_the_first_slowed_night_compares_slower_only_there():
    from kbench.nightly.compare import compare_files

    comparison = compare_files(HISTORY / "sweep-2026-11-04.csv", HISTORY / "sweep-2026-11-05.csv")
    assert [(r["model"], r["batch_size"], r["mode"]) for r in comparison.regressions] == [("resnet18", "8", "train")]
    assert {r["verdict"] for r in comparison.rows} == {stats.SLOWER, stats.SAME}


def test_real_nights_table(capsys):
    assert main(["history", str(HISTORY)]) == 0
    out = capsys.readouterr().out
    assert "2026-11-05" in out and "3 steps (2 slower, 1 faster)" in out


def test_a_drifting_machine_hides_the_step_at_the_default_noise_factor():
    """history_drift/: the same 8 real nights measured while the machine got faster (other jobs
    ending): the slowed configuration's drop (-21%) is only 2.2x its night-to-night noise (10.6%),
    under the 2.5x a step needs, so nothing is reported; at --noise-factor 2 it is, and alone."""
    history = load_history(DATA / "history_drift")
    assert history.steps() == []
    (slowed,) = [s for s in history.series if (s.fields["model"], s.fields["batch_size"], s.fields["mode"])
                 == ("resnet18", "8", "train")]
    values = np.asarray(slowed.values)
    drop = np.median(values[4:]) / np.median(values[:4]) - 1
    noise = stats.robust_noise(np.log(values))
    assert -0.25 < drop < -0.15 and 2.0 * noise < abs(np.log1p(drop)) < 2.5 * noise  # noise is in log units
    (step,) = load_history(DATA / "history_drift", noise_factor=2.0).steps()
    assert (step["model"], step["batch_size"], step["mode"], step["night"]) == ("resnet18", "8", "train", "2026-11-05")


# ----------------------------------------------------------------------------- bad input

def test_bad_directories_exit_2(tmp_path, capsys):
    assert main(["history", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty")]) == 2
    assert "no sweep-YYYY-MM-DD.csv or sweep-YYYY-MM-DDTHHMMSSZ.csv" in capsys.readouterr().err


def test_a_malformed_night_exits_2_naming_it(tmp_path, capsys):
    directory = tmp_path / "r"
    shutil.copytree(HISTORY, directory)
    bad = directory / "sweep-2026-11-03.csv"
    bad.write_text(bad.read_text().replace(",ok,", ",fine,", 1))
    before = bad.read_bytes()
    assert main(["history", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep-2026-11-03.csv" in err
    assert bad.read_bytes() == before


@pytest.mark.parametrize("flag", [["--min-points", "0"], ["--min-change", "7"], ["--noise-factor", "-1"]])
def test_bad_flags_exit_2(flag):
    assert main(["history", str(HISTORY), *flag]) == 2
