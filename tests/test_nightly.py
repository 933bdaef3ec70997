"""`kbench nightly` (what run_all.sh runs after its sweep) on the committed real CPU sweeps
(tests/data/nightly/README.md): compare with the previous run of the same machine, history,
report, one summary paragraph, exit 0 for a clean night and 1 for a regression."""

import csv
import hashlib
import shutil
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.nightly.run import run_night
from kbench.results.frame import night_label, nightly_files, previous_run

DATA = Path(__file__).parent / "data" / "nightly"
ROUNDS_A, ROUNDS_B, ROUNDS_SLOW = DATA / "rounds_a.csv", DATA / "rounds_b.csv", DATA / "rounds_slow.csv"


def _night(directory, source, name, **changes):
    """``source`` copied to ``directory/name``, with ``changes`` applied to every row."""
    directory.mkdir(exist_ok=True)
    target = directory / name
    if not changes:
        shutil.copy(source, target)
        return target
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    for row in rows:
        row.update(changes)
    with open(target, "w", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.fixture
def reports(monkeypatch):
    """The report's plots cost seconds (tests/test_report.py draws them): record the calls instead.
    test_an_a_a_night_is_clean builds the real one."""
    calls = []

    def fake_build_report(directory, out, tag, threshold, alpha, comparison, history):
        assert history is not None  # the night's own history, not read a second time
        calls.append({"directory": Path(directory), "out": Path(out), "comparison": comparison})
        return type("Report", (), {"index": Path(out) / "index.html"})

    monkeypatch.setattr("kbench.nightly.run.build_report", fake_build_report)
    return calls


def _digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.csv")}


def test_night_labels_sort_in_time_order():
    assert night_label("sweep-2026-12-03.csv") == "2026-12-03"
    assert night_label("sweep-2026-12-03T141500Z.csv") == "2026-12-03T14:15:00Z"
    assert night_label("sweep-20261203T141500Z.csv") == "2026-12-03T14:15:00Z"  # kbench sweep's default --out
    assert night_label("sweep-full-2026-12-03T141500Z.csv") is None
    assert night_label("sweep-full-2026-12-03T141500Z.csv", tag="sweep-full") == "2026-12-03T14:15:00Z"
    assert night_label("sweep-2026-12-03T1415Z.csv") is None and night_label("notes.csv") is None
    labels = ["2026-12-03T14:15:00Z", "2026-12-03", "2026-12-02T23:59:59Z", "2026-12-03T09:00:00Z"]
    assert sorted(labels) == ["2026-12-02T23:59:59Z", "2026-12-03", "2026-12-03T09:00:00Z", "2026-12-03T14:15:00Z"]


def test_an_a_a_night_is_clean(tmp_path, capsys):
    """Two back-to-back runs of one commit on the same day: each has its own file, the second is
    compared with the first, everything is `same`, exit 0; the report is written."""
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    new = _night(results, ROUNDS_B, "sweep-2026-12-01T020000Z.csv")
    before = _digests(results)
    assert main(["nightly", str(new)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # no table of changed rows: the paragraph only
    assert "Against sweep-2026-12-01T010000Z.csv: 8 configurations: 0 slower, 0 faster, 8 same" in out
    assert "No regression (exit 0)." in out and "spread of the rounds" in out
    assert (results / "report" / "index.html").is_file()
    assert _digests(results) == before  # the inputs are only read


def test_an_injected_slowdown_fails_the_night_and_names_only_that_row(tmp_path, capsys, reports):
    """rounds_slow: resnet18 b8 train really slowed by a 30% pause after each step; the night
    exits 1 and names that configuration, and only it."""
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01.csv")
    new = _night(results, ROUNDS_SLOW, "sweep-2026-12-02T010000Z.csv")
    assert main(["nightly", str(new)]) == 1
    out = capsys.readouterr().out
    regression = out[out.index("REGRESSION:"):]
    assert regression.startswith("REGRESSION: resnet18 32x32 b8 train tensorflow float32 -")
    assert regression.count(" b") == 1 and regression.rstrip().endswith("(exit 1).")
    table = out[:out.index("Night ")].strip().splitlines()
    assert len(table) == 3 and "slower" in table[2] and "resnet18" in table[2]  # header, rule, one row
    night = run_night(new)
    assert [(r["model"], r["batch_size"], r["mode"]) for r in night.regressions] == [("resnet18", "8", "train")]
    assert night.exit_code == 1 and night.report_index == results / "report" / "index.html"
    assert reports[-1]["comparison"] is night.comparison  # the report shows the verdict the exit code gives


def test_the_previous_run_is_the_newest_earlier_one_of_the_same_machine(tmp_path):
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-11-30.csv")
    first = _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    _night(results, ROUNDS_B, "sweep-2026-12-01T013000Z.csv", host="another-machine")
    new = _night(results, ROUNDS_B, "sweep-2026-12-01T020000Z.csv")
    _night(results, ROUNDS_B, "sweep-2026-12-01T030000Z.csv")  # later than NEW: never its base
    _night(results, ROUNDS_B, "sweep-full-2026-12-01T015000Z.csv")  # another tag
    assert previous_run(results, new) == (first, [])
    assert previous_run(results, first)[0] == results / "sweep-2026-11-30.csv"
    assert previous_run(results, results / "sweep-2026-11-30.csv") == (None, [])
    assert len(nightly_files(results)) == 5


def test_the_first_night_has_nothing_to_compare(tmp_path, capsys, reports):
    results = tmp_path / "results"
    new = _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    assert main(["nightly", str(new)]) == 0
    out = capsys.readouterr().out
    assert "No earlier run of this machine to compare with." in out and "No regression" in out
    assert reports[0]["comparison"] is None


def test_a_damaged_older_file_does_not_hide_tonights_verdict(tmp_path, capsys):
    """A damaged earlier CSV is passed over for the comparison (the run before it is used) and
    stops only the history and the report, which say so; the exit code is still tonight's."""
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    damaged = _night(results, ROUNDS_B, "sweep-2026-12-01T013000Z.csv", status="maybe")
    new = _night(results, ROUNDS_SLOW, "sweep-2026-12-01T020000Z.csv")
    assert main(["nightly", str(new)]) == 1
    out = capsys.readouterr().out
    assert "Against sweep-2026-12-01T010000Z.csv" in out and f"Passed over (unreadable): {damaged.name}" in out
    assert "History and report not written" in out and not (results / "report").exists()


@pytest.mark.parametrize("extra", [["--results", "{dir}"], ["--report", "{dir}/elsewhere"]])
def test_results_and_report_directories_can_be_named(tmp_path, extra, reports):
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    new = _night(tmp_path / "incoming", ROUNDS_B, "sweep-2026-12-01T020000Z.csv")
    argv = ["nightly", str(new if "--results" in extra else results / new.name)] + [
        a.replace("{dir}", str(results)) for a in extra]
    if "--report" in extra:
        shutil.copy(new, results / new.name)
    assert main(argv) == 0
    assert reports[0]["directory"] == results
    assert reports[0]["out"] == results / ("elsewhere" if "--report" in extra else "report")
    assert reports[0]["comparison"].base.endswith("sweep-2026-12-01T010000Z.csv")


# ----------------------------------------------------------------------------- run_all.sh

ROOT = Path(__file__).resolve().parent.parent
FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for the venv's python: records each call, plays each kbench command's exit code.
echo "$*" >> "$LOG"
case "$3" in
  profile) exit "$PROFILE_RC" ;;
  sweep) while [ $# -gt 0 ]; do [ "$1" = --out ] && cp "$SWEEP_ROWS" "$2"; shift; done; exit 0 ;;
  nightly) exit "$NIGHTLY_RC" ;;
esac
exit 3
"""


def _run_all(tmp_path, args, profile_rc=0, nightly_rc=0):
    """run_all.sh ARGS in a copy of the checkout with a stand-in python; (result, calls)."""
    import subprocess

    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "run_all.sh", checkout)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", checkout / "scripts")
    (checkout / "setup.cfg").write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PYTHON)
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".kbench-install-cpu").touch()  # newer than setup.cfg: bootstrap installs nothing
    log = tmp_path / "calls.log"
    env = {"PATH": "/usr/bin:/bin", "KBENCH_VENV": str(venv), "LOG": str(log), "SWEEP_ROWS": str(ROUNDS_A),
           "PROFILE_RC": str(profile_rc), "NIGHTLY_RC": str(nightly_rc)}
    done = subprocess.run([str(checkout / "run_all.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=60)
    return done, checkout, log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("profile_rc, nightly_rc", [(0, 0), (1, 1), (0, 2)])
def test_run_all_runs_profile_sweep_and_nightly_and_exits_with_the_nightly_code(tmp_path, profile_rc, nightly_rc):
    """run_all.sh's own logic, with a stand-in python (no measuring): the profile (resumed, one
    file a day) whose failure does not stop the sweep, the sweep into a file of its own named by
    the UTC time, `-- ARGS` passed to the sweep, then `kbench nightly` on that file, whose exit
    code (0 clean, 1 regression, 2 bad input) is the job's."""
    done, checkout, (profile, sweep, nightly) = _run_all(tmp_path, ["--", "--backend", "tensorflow"],
                                                         profile_rc, nightly_rc)
    assert done.returncode == nightly_rc, done.stderr
    assert profile.startswith("-m kbench profile all --format csv --out results/profile-") and "--resume" in profile
    assert ("some models failed" in done.stderr) == (profile_rc != 0)
    out = sweep.split("--out ")[1].split()[0]
    assert night_label(Path(out).name) is not None and "T" in night_label(Path(out).name)
    assert "--config nightly" in sweep and "--time-budget" in sweep and "--resume" not in sweep
    assert sweep.endswith("--backend tensorflow")
    assert nightly == f"-m kbench nightly {out} --results results --tag sweep --report results/report"
    assert (checkout / out).read_bytes() == ROUNDS_A.read_bytes()


def test_run_all_full_sweeps_every_model_into_its_own_series(tmp_path):
    done, _, (_, sweep, nightly) = _run_all(tmp_path, ["--full"])
    assert done.returncode == 0, done.stderr
    out = sweep.split("--out ")[1].split()[0]
    assert out.startswith("results/sweep-full-") and night_label(Path(out).name, tag="sweep-full")
    assert "--config full" in sweep and "--time-budget" not in sweep
    assert nightly == f"-m kbench nightly {out} --results results --tag sweep-full --report results/report-full"
    bad, _, calls = _run_all(tmp_path / "bad", ["--fast"])
    assert bad.returncode == 2 and "usage: run_all.sh" in bad.stderr and calls == []
