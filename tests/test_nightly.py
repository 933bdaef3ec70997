"""`kbench nightly` (what run_all.sh runs after its sweep) on the committed real CPU sweeps
(tests/data/nightly/README.md, tests/data/nightly/aa/README.md): compare with the previous run of
the same machine, confirm every suspected regression by a re-measurement interleaved with a
control (here made of recorded runs; the real one in a test marked slow),
history, report, one summary paragraph; exit 0 for a clean night, 1 for a confirmed regression,
2 for bad input, 3 for an internal error."""

import csv
import hashlib
import shutil
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.nightly import confirm
from kbench.nightly.run import run_night
from kbench.results import stats
from kbench.results.frame import night_label, nightly_files, previous_run
from nightly_fixtures import recorded_remeasure

DATA = Path(__file__).parent / "data" / "nightly"
ROUNDS_A, ROUNDS_B, ROUNDS_SLOW = DATA / "rounds_a.csv", DATA / "rounds_b.csv", DATA / "rounds_slow.csv"
AA = DATA / "aa"  # recorded A/A pairs, three sets of ten (aa/README.md)
PAIRS = [(path.parent.name, path.name[:6]) for path in sorted(AA.glob("set*/pair*_a.csv"))]
PRIORITISED = AA / "set2"  # the sweeps at scheduler priority -20
INJECTED = sorted(PRIORITISED.glob("inject*.csv"))  # resnet18 64x64 b8 train really 40% slower (aa/README.md)
BEFORE_INJECTED = PRIORITISED / "pair10_b.csv"  # the last A/A run, measured just before them
QUIET = AA / "set3"  # the same runs on a quiet machine


def _slowed_run_again(calls=None):
    """A stand-in re-measurement for the tests of what a night does with a confirmed regression:
    every visit finds the slowed run's own values again (rounds_slow.csv, a real slowdown of
    resnet18 32x32 b8 train). The statistics of real visits: the recorded tests below, and the
    slow test that measures."""
    return lambda suspect, control, visits: recorded_remeasure([ROUNDS_SLOW] * visits, calls)(suspect, control, visits)


def _night(directory, source, name, **changes):
    """``source`` copied to ``directory/name``, with ``changes`` applied to every row."""
    directory.mkdir(parents=True, exist_ok=True)
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

    def fake_build_report(directory, out, tag, threshold, alpha, comparison, history, latest):
        assert history is not None and latest is not None  # the night's own, not read a second time
        calls.append({"directory": Path(directory), "out": Path(out), "comparison": comparison})
        return type("Report", (), {"index": Path(out) / "index.html"})

    monkeypatch.setattr("kbench.nightly.run.build_report", fake_build_report)
    return calls


def _edited_night(directory, source, name, edit):
    directory.mkdir(exist_ok=True)
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    for row in rows:
        edit(row)
    with open(directory / name, "w", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return directory / name


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
    assert ("Against sweep-2026-12-01T010000Z.csv: 8 configurations: 0 slower, 0 faster, 0 inconclusive, 8 same"
            in out)
    assert "No regression (exit 0)." in out and "spread of the rounds" in out
    assert (results / "report" / "index.html").is_file()
    assert _digests(results) == before  # the inputs are only read


def _pair_night(tmp_path, base: Path, new: Path) -> Path:
    results = tmp_path / "results"
    _night(results, base, "sweep-2026-12-01T010000Z.csv")
    return _night(results, new, "sweep-2026-12-01T020000Z.csv")


def _other_runs(*excluded: Path, count: int = 5) -> list[Path]:
    """Recorded A/A runs of the same set other than ``excluded``: the visits of a recorded
    re-measurement."""
    return [path for path in sorted(excluded[0].parent.glob("pair*_[ab].csv")) if path not in excluded][:count]


def test_a_confirmed_regression_fails_the_night_and_names_only_it(tmp_path):
    """resnet18 32x32 b8 train really slowed (rounds_slow.csv): slower in the sweep, re-measured
    once (5 visits, with a control), confirmed, exit 1, and the night names that configuration
    and only it."""
    new = _pair_night(tmp_path, ROUNDS_A, ROUNDS_SLOW)
    calls = []
    night = run_night(new, remeasure=_slowed_run_again(calls))
    assert [(r["model"], r["batch_size"], r["mode"]) for r in night.regressions] == [("resnet18", "8", "train")]
    (regression,) = night.regressions
    assert regression["confirmation"].startswith("confirmed: re-measured -") and regression["change"] <= -0.2
    (call,) = calls
    assert call[2] == stats.min_rounds(stats.DEFAULT_ALPHA) and call[1] is not None  # 5 visits, with a control
    assert night.exit_code == 1 and night.summary.endswith("(exit 1).")
    assert "REGRESSION: resnet18 32x32 b8 train tensorflow float32 -" in night.summary
    assert "1 confirmed, 0 not confirmed" in night.summary


def test_a_slowdown_measured_under_heavy_load_is_not_comparable_never_same(tmp_path):
    """The recorded injected slowdown (resnet18 64x64 b8 train 40% slower, aa/set2/): on the
    shared machine other processes took 50% and 74% of the CPUs while the two rows ran, and the
    rounds moved -34% with every round separated. The load guard says so: `not_comparable`
    ("measured under heavy load"), shown in the summary, not re-measured, exit 0; it is not
    called `same`."""
    new = _pair_night(tmp_path, BEFORE_INJECTED, INJECTED[0])
    night = run_night(new, remeasure=lambda *a: pytest.fail("a not_comparable pair is not re-measured"))
    rows = {(r["model"], r["batch_size"], r["mode"]): r for r in night.comparison.rows}
    slowed = rows[("resnet18", "8", "train")]
    assert slowed["verdict"] == stats.NOT_COMPARABLE and "heavy load" in slowed["note"]
    assert slowed["change"] < -0.3 and slowed["p_value"] <= stats.DEFAULT_ALPHA
    assert night.exit_code == 0 and night.regressions == [] and " not comparable" in night.summary


def test_an_injected_slowdown_on_a_quiet_machine_is_confirmed_and_fails_the_night(tmp_path):
    """The same injected slowdown recorded on a quiet machine (aa/set3/: other processes under 5%
    of the CPUs): against the last A/A run it is `slower`, and the re-measurement (its visits: the
    other injected runs, suspect and control from the same run) confirms it: exit 1, and the night
    names that configuration only."""
    injected = sorted(QUIET.glob("inject*.csv"))
    new = _pair_night(tmp_path, QUIET / "pair10_b.csv", injected[0])
    calls = []
    night = run_night(new, remeasure=recorded_remeasure(injected[1:], calls))
    assert [(r["model"], r["batch_size"], r["mode"]) for r in night.regressions] == [("resnet18", "8", "train")]
    (regression,) = night.regressions
    assert regression["confirmation"].startswith("confirmed: re-measured -") and regression["change"] <= -0.2
    # Every suspect is re-measured (5 visits, with a control); another one of this night is not confirmed.
    assert all(call[2] == stats.min_rounds(stats.DEFAULT_ALPHA) and call[1] is not None for call in calls)
    assert regression["key"] in [call[0] for call in calls]
    assert night.exit_code == 1 and "1 confirmed" in night.summary


@pytest.mark.slow  # three real measurements (two sweeps and the re-measurement): minutes on 2 cores
def test_an_injected_slowdown_is_confirmed_by_a_real_re_measurement(tmp_path):
    """End to end on this machine, every number measured: a sweep, the same sweep with resnet18
    64x64 b8 train really 40% slower (tests/data/nightly/slowdown/: the code under test is
    slowed, in every worker, the re-measurement's included), then `kbench nightly`: the slowed
    configuration is `slower`, confirmed by the re-measurement against a control, exit 1. Needs
    a quiet machine: under heavy load the pair is `not_comparable` (the load guard), and the
    night is exit 0, which fails this test on purpose."""
    import os
    import subprocess
    import sys

    results = tmp_path / "results"
    results.mkdir()
    root = Path(__file__).resolve().parent.parent
    plain = {**os.environ, "PYTHONPATH": str(root)}
    slowed = {**plain, "PYTHONPATH": os.pathsep.join([str(root), str(DATA / "slowdown")]),
              "KBENCH_TEST_SLOWDOWN": "resnet18:8:train=0.4"}
    sweep = ["-m", "kbench", "sweep", "lenet5,resnet18", "--input-size", "64", "--batch-sizes", "8",
             "--modes", "infer,train", "--no-progress", "--profile-cache", str(tmp_path / "cache"), "--out"]
    for name, env in (("sweep-2026-12-01T010000Z.csv", plain), ("sweep-2026-12-01T020000Z.csv", slowed)):
        done = subprocess.run([sys.executable, *sweep, str(results / name)], env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
    night = subprocess.run([sys.executable, "-m", "kbench", "nightly", str(results / "sweep-2026-12-01T020000Z.csv")],
                           env=slowed, capture_output=True, text=True, timeout=900)
    assert night.returncode == 1, night.stdout + night.stderr[-2000:]
    assert "REGRESSION: resnet18 64x64 b8 train tensorflow float32 -" in night.stdout
    assert "confirmed: re-measured -" in night.stdout and "REGRESSION: lenet5" not in night.stdout


@pytest.mark.parametrize("recorded_set, pair", PAIRS)
def test_recorded_a_a_pairs_never_fail_a_night(tmp_path, recorded_set, pair, reports):
    """Each recorded A/A pair (two back-to-back sweeps of one commit) as a night, every suspect
    re-measured against five other recorded runs of that commit: no confirmed regression, exit 0."""
    base, new_source = AA / recorded_set / f"{pair}_a.csv", AA / recorded_set / f"{pair}_b.csv"
    new = _pair_night(tmp_path, base, new_source)
    night = run_night(new, remeasure=recorded_remeasure(_other_runs(base, new_source)))
    assert night.regressions == [] and night.exit_code == 0
    for row in night.comparison.rows:
        if row["confirmation"]:
            assert row["verdict"] in (stats.SAME, stats.INCONCLUSIVE)


def test_a_suspect_that_is_not_confirmed_is_same_and_shown(tmp_path, capsys, monkeypatch):
    """A slower pair whose re-measurement does not move against the control: `same (not
    confirmed)`, listed with the other moved rows, exit 0."""
    new = _pair_night(tmp_path, ROUNDS_A, ROUNDS_SLOW)

    def unchanged(suspect, control, visits):  # the base run's own rows, measured again
        return recorded_remeasure([ROUNDS_A] * visits)(suspect, control, visits)
    monkeypatch.setattr(confirm, "measure_here", unchanged)
    assert main(["nightly", str(new)]) == 0
    out = capsys.readouterr().out
    assert "not confirmed" in out and "No regression (exit 0)." in out
    assert "0 confirmed, 1 not confirmed (same)" in out


@pytest.mark.parametrize("reason", ["measured on host vm, this is elsewhere", "budget"])
def test_a_suspect_that_cannot_be_re_measured_is_inconclusive(tmp_path, capsys, monkeypatch, reason):
    new = _pair_night(tmp_path, ROUNDS_A, ROUNDS_SLOW)

    def refuse(suspect, control, visits):
        raise confirm.NotRemeasured(reason)
    monkeypatch.setattr(confirm, "measure_here", refuse)
    argv = ["nightly", str(new)] + (["--confirm-budget", "0"] if reason == "budget" else [])
    if reason == "budget":
        monkeypatch.setattr(confirm, "measure_here", lambda *a: pytest.fail("re-measured without a budget"))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "inconclusive" in out and "not re-measured" in out and "1 not re-measured (inconclusive)" in out
    assert ("budget" in out) == (reason == "budget")


def test_rows_of_another_host_are_not_re_measured_here():
    row = {"host": "not-this-machine", "device_kind": "x"}
    with pytest.raises(confirm.NotRemeasured, match="host not-this-machine"):
        confirm.measure_here(row, None, 5)


def test_an_internal_error_of_the_report_is_exit_3_unless_there_is_a_regression(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the report")
    monkeypatch.setattr("kbench.nightly.run.build_report", broken)
    clean = _pair_night(tmp_path / "clean", ROUNDS_A, ROUNDS_B)
    assert main(["nightly", str(clean)]) == 3
    out = capsys.readouterr().out
    assert "internal error (RuntimeError: a bug in the report)" in out and "(exit 3" in out
    slowed = _pair_night(tmp_path / "slowed", ROUNDS_A, ROUNDS_SLOW)
    monkeypatch.setattr(confirm, "measure_here", _slowed_run_again())
    assert main(["nightly", str(slowed)]) == 1  # the regression is what the night reports


def test_a_malformed_night_is_exit_2_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    bad = _night(results, ROUNDS_B, "sweep-2026-12-01T020000Z.csv", samples_per_s_rounds="1;x")
    assert main(["nightly", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "samples_per_s_rounds" in err
    assert not (results / "report").exists()


def test_a_tag_is_a_plain_name(tmp_path, capsys):
    new = _night(tmp_path / "results", ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    for tag in ("../../x", "a/b", "", "Sweep", "-x"):
        assert main(["nightly", str(new), "--tag", tag]) == 2
        assert "--tag" in capsys.readouterr().err
    assert not (tmp_path / "results" / "report").exists()


def test_a_header_only_earlier_run_is_passed_over(tmp_path, reports):
    results = tmp_path / "results"
    first = _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    header = ROUNDS_A.read_text().splitlines()[0] + "\n"
    (results / "sweep-2026-12-01T013000Z.csv").write_text(header)  # a sweep whose budget ran out at once
    new = _night(results, ROUNDS_B, "sweep-2026-12-01T020000Z.csv")
    assert previous_run(results, new) == (first, [])
    assert run_night(new).comparison.base == str(first)


def test_escape_codes_never_reach_the_terminal(tmp_path, capsys, reports):
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv", host="vm\x1b]0;pwned\x07")
    new = _night(results, ROUNDS_B, "sweep-2026-12-01T020000Z.csv", host="vm\x1b]0;pwned\x07")
    assert main(["nightly", str(new)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "vm\\x1b]0;pwned\\x07" in out


def test_a_noisy_history_raises_the_minimum_effect(tmp_path, reports):
    """Five earlier nights in which a configuration's samples/s scattered by about 20% from night
    to night: its slowdown of about 35% tonight is within what its history does, so it is
    `same` without a re-measurement; the quiet configurations keep the threshold."""
    results = tmp_path / "results"
    scatter = [1.0, 1.25, 0.8, 1.2, 0.85]
    for night, factor in enumerate(scatter, start=1):
        def edit(row, factor=factor):
            if (row["model"], row["batch_size"], row["mode"]) == ("resnet18", "8", "train"):
                value = float(row["samples_per_s"]) * factor
                row.update(samples_per_s=f"{value:.6g}", samples_per_s_rounds=stats.format_rounds(
                    [float(v) * factor for v in row["samples_per_s_rounds"].split(";")]))
        _edited_night(results, ROUNDS_A, f"sweep-2026-11-0{night}.csv", edit)
    _night(results, ROUNDS_A, "sweep-2026-11-06.csv")
    new = _night(results, ROUNDS_SLOW, "sweep-2026-11-07.csv")
    night = run_night(new, remeasure=lambda *a: pytest.fail("nothing should need a re-measurement"))
    rows = {(r["model"], r["batch_size"], r["mode"]): r for r in night.comparison.rows}
    slowed = rows[("resnet18", "8", "train")]
    assert slowed["verdict"] == stats.SAME and slowed["min_effect"] > abs(slowed["change"])
    assert {r["min_effect"] for k, r in rows.items() if k != ("resnet18", "8", "train")} == {stats.DEFAULT_THRESHOLD}
    assert "8 configurations have 5+ earlier nights; 1 of them need more than 10%" in night.summary


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


def test_a_damaged_older_file_does_not_hide_tonights_verdict(tmp_path, capsys, monkeypatch):
    """A damaged earlier CSV is passed over for the comparison (the run before it is used) and
    stops only the history and the report, which say so; the exit code is still tonight's."""
    results = tmp_path / "results"
    _night(results, ROUNDS_A, "sweep-2026-12-01T010000Z.csv")
    damaged = _night(results, ROUNDS_B, "sweep-2026-12-01T013000Z.csv", status="maybe")
    new = _night(results, ROUNDS_SLOW, "sweep-2026-12-01T020000Z.csv")
    monkeypatch.setattr(confirm, "measure_here", _slowed_run_again())
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
    assert nightly.startswith(f"-m kbench nightly {out} --results results --tag sweep --report results/report "
                              f"--confirm-budget ")
    assert int(nightly.split()[-1]) >= 60  # what the sweep left of the night's budget
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
