"""kbench compare on real CPU sweeps (committed fixtures, see tests/data/nightly/README.md) and on
edited copies of them for the edge cases. Nothing here measures: the data is fixed."""

import csv
import hashlib
import json
from pathlib import Path

import pytest

from kbench.results import stats
from kbench.cli import main
from kbench.nightly.compare import COLUMNS, compare_files
from kbench.errors import UsageError

DATA = Path(__file__).parent / "data" / "nightly"
ROUNDS_A, ROUNDS_B, ROUNDS_SLOW = DATA / "rounds_a.csv", DATA / "rounds_b.csv", DATA / "rounds_slow.csv"
SWEEP_A, SWEEP_B = DATA / "sweep_a.csv", DATA / "sweep_b.csv"
SLOWED = ("resnet18", "8", "train")


def _read(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _edited(tmp_path, source, name, edit):
    header, rows = _read(source)
    edit(rows)  # edits change the rows in place
    return _write(tmp_path / name, header, rows)


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _verdicts(comparison):
    return {(r["model"], r["batch_size"], r["mode"]): r["verdict"] for r in comparison.rows}


# ----------------------------------------------------------------------------- real sweeps

def test_fixtures_are_real_rounds_of_one_machine():
    for path in (ROUNDS_A, ROUNDS_B, ROUNDS_SLOW):
        _, rows = _read(path)
        assert len(rows) == 8
        assert {r["rounds"] for r in rows} == {"5"}
        assert len({r["host"] for r in rows}) == 1


def test_a_a_pair_is_same_everywhere():
    comparison = compare_files(ROUNDS_A, ROUNDS_B)
    assert len(comparison.rows) == 8
    assert {r["verdict"] for r in comparison.rows} == {stats.SAME}
    assert {r["method"] for r in comparison.rows} == {stats.METHOD_RANK_TEST}
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_B)]) == 0


@pytest.mark.parametrize("base", [ROUNDS_A, ROUNDS_B], ids=["a", "b"])
def test_a_real_slowdown_is_flagged_and_only_that_row(base, capsys):
    comparison = compare_files(base, ROUNDS_SLOW)
    verdicts = _verdicts(comparison)
    assert verdicts.pop(SLOWED) == stats.SLOWER
    assert set(verdicts.values()) == {stats.SAME}
    (slower,) = comparison.regressions
    assert slower["change"] <= -0.15
    assert slower["p_value"] == pytest.approx(stats.min_two_sided_p(5, 5))
    assert main(["compare", str(base), str(ROUNDS_SLOW)]) == 1
    assert "1 slower" in capsys.readouterr().out


def test_the_slowdown_read_backwards_is_faster():
    verdicts = _verdicts(compare_files(ROUNDS_SLOW, ROUNDS_A))
    assert verdicts.pop(SLOWED) == stats.FASTER
    assert set(verdicts.values()) == {stats.SAME}


def test_sweeps_without_rounds_are_never_a_regression():
    comparison = compare_files(SWEEP_A, SWEEP_B)
    assert {r["method"] for r in comparison.rows} == {stats.METHOD_NO_ROUNDS}
    assert all(r["p_value"] is None for r in comparison.rows)
    # The limit of one number per row: in this real A/A pair (two `kbench sweep` runs back to
    # back while other jobs loaded the 2-core machine) resnet18 b1 infer ran 50% slower in the
    # second run, every step alike. Without rounds no test can say how often that happens by
    # chance: `inconclusive`, shown and counted, never a regression (exit 0).
    assert _verdicts(comparison)[("resnet18", "1", "infer")] == stats.INCONCLUSIVE
    for row in comparison.rows:
        assert row["verdict"] == (stats.INCONCLUSIVE if abs(row["change"]) >= 0.1 else stats.SAME)
    assert main(["compare", str(SWEEP_A), str(SWEEP_B)]) == 0


def test_rounds_on_one_side_only_fall_back(tmp_path):
    comparison = compare_files(SWEEP_A, ROUNDS_A)
    ok = [r for r in comparison.rows if r["verdict"] != stats.NOT_COMPARABLE]
    assert ok and all(r["method"] == stats.METHOD_NO_ROUNDS and r["verdict"] in (stats.SAME, stats.INCONCLUSIVE)
                      for r in ok)
    assert all("one side only" in r["note"] for r in ok if r["verdict"] == stats.INCONCLUSIVE)


def _two_rounds(tmp_path, name, factor):
    """ROUNDS_A with 2 rounds per row, scaled by ``factor``."""
    def edit(rows):
        for row in rows:
            values = [float(v) * factor for v in row["samples_per_s_rounds"].split(";")[:2]]
            row.update(samples_per_s_rounds=";".join(f"{v:.6g}" for v in values), rounds="2",
                       samples_per_s=f"{sum(values) / 2:.6g}")
    return _edited(tmp_path, ROUNDS_A, name, edit)


def test_two_rounds_a_side_30_percent_apart_are_inconclusive(tmp_path, capsys):
    """Two rounds per side cannot reach alpha 0.01 (the smallest p is 1/3): a 30% move with
    every round separated is `inconclusive`, counted and shown, exit 0."""
    base, new = _two_rounds(tmp_path, "base.csv", 1.0), _two_rounds(tmp_path, "new.csv", 0.7)
    comparison = compare_files(base, new)
    assert {r["verdict"] for r in comparison.rows} == {stats.INCONCLUSIVE}
    assert all(r["change"] == pytest.approx(-0.3, abs=1e-4) for r in comparison.rows)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "8 inconclusive" in out and "0 slower" in out and "inconclusive" in out.splitlines()[2]


@pytest.mark.parametrize("empty_side", ["base", "new"])
def test_a_file_without_rows_is_bad_input_on_either_side(tmp_path, capsys, empty_side):
    header, _ = _read(ROUNDS_A)
    empty = _write(tmp_path / "empty.csv", header, [])
    argv = [str(empty), str(ROUNDS_B)] if empty_side == "base" else [str(ROUNDS_A), str(empty)]
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty.csv" in err and "no rows" in err


def test_escape_codes_in_fields_are_printed_escaped(tmp_path, capsys):
    """A CSV field holding a terminal escape sequence (here: clear the screen, red) reaches the
    terminal as visible text, never as a command to it."""
    def edit(rows):
        for row in rows:
            if row["model"] == "resnet18":
                row["model"] = "resnet18\x1b[2J\x1b[31m"
    base, new = _edited(tmp_path, ROUNDS_A, "a.csv", edit), _edited(tmp_path, ROUNDS_SLOW, "b.csv", edit)
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "resnet18\\x1b[2J\\x1b[31m" in out


def test_a_noisy_history_raises_the_minimum_effect_of_its_configuration():
    """The slowed row moved about -35%: with a minimum effect of 50% for it (its history's
    night-to-night noise, as `kbench nightly` passes), it is `same`."""
    slowed_key = next(r["key"] for r in compare_files(ROUNDS_A, ROUNDS_SLOW).rows
                      if (r["model"], r["batch_size"], r["mode"]) == SLOWED)
    comparison = compare_files(ROUNDS_A, ROUNDS_SLOW, min_effects={slowed_key: 0.5})
    row = next(r for r in comparison.rows if r["key"] == slowed_key)
    assert (row["verdict"], row["min_effect"]) == (stats.SAME, 0.5) and "not significant" not in row["note"]
    assert {r["min_effect"] for r in comparison.rows if r is not row} == {stats.DEFAULT_THRESHOLD}


# ----------------------------------------------------------------------------- pairing

def test_missing_rows_and_failed_status_are_not_comparable(tmp_path):
    def edit(rows):
        rows[0].update(status="oom", samples_per_s="", error="OOM when allocating")
        del rows[1]
    new = _edited(tmp_path, ROUNDS_B, "new.csv", edit)
    rows = {(r["model"], r["batch_size"], r["mode"]): r for r in compare_files(ROUNDS_A, new).rows}
    assert len(rows) == 8
    first, second = rows[("lenet5", "1", "infer")], rows[("lenet5", "8", "infer")]
    assert (first["verdict"], first["note"]) == (stats.NOT_COMPARABLE, "status ok -> oom")
    assert (second["verdict"], second["note"]) == (stats.NOT_COMPARABLE, "only in base")
    reverse = compare_files(new, ROUNDS_A).rows
    assert [r["note"] for r in reverse if r["note"] == "only in new"] == ["only in new"]


def test_another_environment_is_shown_not_compared(tmp_path):
    def edit(rows):
        for row in rows:
            row["keras_version"] = "9.9.9"
    new = _edited(tmp_path, ROUNDS_SLOW, "new.csv", edit)
    comparison = compare_files(ROUNDS_A, new)
    assert {r["verdict"] for r in comparison.rows} == {stats.NOT_COMPARABLE}
    assert all("keras_version" in r["note"] and "9.9.9" in r["note"] for r in comparison.rows)
    assert all(r["change"] is not None for r in comparison.rows)  # the numbers are still shown
    assert main(["compare", str(ROUNDS_A), str(new)]) == 0
    allowed = compare_files(ROUNDS_A, new, ignore_env=("keras_version",))
    assert _verdicts(allowed)[SLOWED] == stats.SLOWER
    assert main(["compare", str(ROUNDS_A), str(new), "--ignore-env", "keras_version"]) == 1


def test_another_device_kind_is_paired_and_shown(tmp_path):
    def edit(rows):
        for row in rows:
            row["device_kind"] = "NVIDIA H100 80GB HBM3"
    new = _edited(tmp_path, ROUNDS_B, "new.csv", edit)
    comparison = compare_files(ROUNDS_A, new)
    assert len(comparison.rows) == 8
    assert {r["verdict"] for r in comparison.rows} == {stats.NOT_COMPARABLE}
    assert all("device_kind" in r["note"] and "->" in r["device_kind"] for r in comparison.rows)


# ----------------------------------------------------------------------------- output

def test_formats(tmp_path, capsys):
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_SLOW), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["counts"] == {"faster": 0, "slower": 1, "same": 7, "inconclusive": 0, "not_comparable": 0}
    assert document["threshold"] == stats.DEFAULT_THRESHOLD
    assert list(document["rows"][0]) == list(COLUMNS)
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_B), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 9
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_B), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert text.split("|")[1].strip() == "model" and "8 configurations: 0 slower" in text
    out = tmp_path / "cmp.txt"
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_SLOW), "--threshold", "50%", "--out", str(out)]) == 0
    assert "threshold 50.0%" in out.read_text() and capsys.readouterr().out == ""


def test_threshold_is_a_minimum_effect():
    assert compare_files(ROUNDS_A, ROUNDS_SLOW, threshold=0.5).regressions == []


# ----------------------------------------------------------------------------- bad input

def _drop_column(column):
    def edit(rows):
        for row in rows:
            del row[column]
    return edit


BAD_EDITS = {
    "status": lambda rows: rows[2].update(status="fine"),
    "samples_per_s": lambda rows: rows[2].update(samples_per_s="fast"),
    "rounds": lambda rows: rows[2].update(samples_per_s_rounds="1;two;3"),
    "duplicate": lambda rows: rows.append(dict(rows[0])),
}


@pytest.mark.parametrize("problem", sorted(BAD_EDITS))
def test_malformed_csv_exits_2_and_writes_nothing(tmp_path, capsys, problem):
    bad = _edited(tmp_path, ROUNDS_B, "bad.csv", BAD_EDITS[problem])
    before = _digest(bad), _digest(ROUNDS_A)
    out = tmp_path / "out.txt"
    assert main(["compare", str(ROUNDS_A), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv" in err
    assert not out.exists()
    assert (_digest(bad), _digest(ROUNDS_A)) == before


def test_missing_column_and_foreign_csv(tmp_path, capsys):
    header, rows = _read(ROUNDS_B)
    no_status = _write(tmp_path / "no_status.csv", [h for h in header if h != "status"],
                       [{k: v for k, v in r.items() if k != "status"} for r in rows])
    profile = _write(tmp_path / "profile.csv", ["run_id", "model", "params_total", "macs"],
                     [{"run_id": "x", "model": "lenet5", "params_total": "1", "macs": "2"}])
    for path in (no_status, profile):
        assert main(["compare", str(ROUNDS_A), str(path)]) == 2
        assert "not a kbench sweep CSV" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["compare", str(empty), str(ROUNDS_A)]) == 2
    assert main(["compare", str(ROUNDS_A), str(empty)]) == 2


def test_no_configuration_in_common_is_bad_input(tmp_path):
    other = _edited(tmp_path, ROUNDS_B, "other.csv", lambda rows: [r.update(input_h="64", input_w="64") for r in rows])
    with pytest.raises(UsageError, match="no configuration in common"):
        compare_files(ROUNDS_A, other)


def test_out_may_not_overwrite_an_input(tmp_path, capsys):
    copy = _write(tmp_path / "a.csv", *_read(ROUNDS_A))
    before = _digest(copy)
    assert main(["compare", str(copy), str(ROUNDS_B), "--out", str(copy)]) == 2
    assert _digest(copy) == before


def test_an_existing_out_file_needs_force(tmp_path, capsys):
    out = tmp_path / "cmp.txt"
    out.write_text("mine")
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_B), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_B), "--out", str(out), "--force"]) == 0
    assert "8 configurations" in out.read_text()


@pytest.mark.parametrize("flag", [["--threshold", "5"], ["--threshold", "abc"], ["--threshold", "0%"],
                                  ["--alpha", "2"], ["--ignore-env", "git_commit"]])
def test_bad_flags_exit_2(flag, capsys):
    assert main(["compare", str(ROUNDS_A), str(ROUNDS_B), *flag]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# ----------------------------------------------------------------------------- the limit

SECOND = DATA / "second_set"


def test_a_load_shift_between_runs_is_not_noise_to_the_rounds():
    """The same three runs measured again 15 minutes later (tests/data/nightly/README.md): the
    other jobs' load changed between the two A runs, every round of a run alike, so the rounds
    (which see only the noise within a run) separate completely and the A/A pair is not `same`
    everywhere. Recorded as the limit of any per-run statistic on a shared machine; the README
    says what a nightly machine needs (no other jobs) and what would detect it (the other
    processes' CPU use recorded per row)."""
    verdicts = _verdicts(compare_files(SECOND / "rounds_a.csv", SECOND / "rounds_b.csv"))
    assert verdicts.pop(("lenet5", "8", "infer")) == stats.FASTER  # +114%, p = 2/252
    assert verdicts.pop(("resnet18", "1", "train")) == stats.FASTER  # +24%
    assert verdicts.pop(SLOWED) == stats.SLOWER  # -23%: a false alarm, exit 1
    assert set(verdicts.values()) == {stats.SAME}
    # the slowed configuration is still found against both A runs
    for base in ("rounds_a.csv", "rounds_b.csv"):
        assert _verdicts(compare_files(SECOND / base, SECOND / "rounds_slow.csv"))[SLOWED] == stats.SLOWER


# ----------------------------------------------------------------------------- load

def _with_load(tmp_path, source, name, loads):
    """A copy of ``source`` whose rows record other processes' CPU share: ``loads`` maps
    (model, batch, mode) to a share, every other row gets 0.05."""
    header, rows = _read(source)
    header = header if "other_cpu_frac" in header else header + ["other_cpu_frac"]
    for row in rows:
        row["other_cpu_frac"] = str(loads.get((row["model"], row["batch_size"], row["mode"]), 0.05))
    return _write(tmp_path / name, header, rows)


def test_a_move_under_very_different_load_is_not_comparable(tmp_path):
    """The slowed row measured while other processes took 60% of the CPUs (5% in the base run):
    the load explains the move as well as a regression would, so the pair is not judged; the
    same move under equal load is `slower`. A pair within noise stays `same` whatever the load."""
    base = _with_load(tmp_path, ROUNDS_A, "base.csv", {})
    loaded = _with_load(tmp_path, ROUNDS_SLOW, "loaded.csv", {SLOWED: 0.6, ("lenet5", "1", "infer"): 0.9})
    rows = {(r["model"], r["batch_size"], r["mode"]): r for r in compare_files(base, loaded).rows}
    slowed = rows[SLOWED]
    assert slowed["verdict"] == stats.NOT_COMPARABLE and "different load" in slowed["note"]
    assert "5% vs 60%" in slowed["note"] and slowed["change"] < -0.1
    assert (slowed["base_other_cpu"], slowed["new_other_cpu"]) == (0.05, 0.6)
    assert rows[("lenet5", "1", "infer")]["verdict"] == stats.SAME
    assert main(["compare", str(base), str(loaded)]) == 0
    equal = _with_load(tmp_path, ROUNDS_SLOW, "equal.csv", {SLOWED: 0.2})  # 15 points apart: comparable
    assert _verdicts(compare_files(base, equal))[SLOWED] == stats.SLOWER


def test_rows_without_a_load_record_are_judged_as_before(tmp_path):
    base = _with_load(tmp_path, ROUNDS_A, "base.csv", {})
    assert _verdicts(compare_files(base, ROUNDS_SLOW))[SLOWED] == stats.SLOWER  # one side unknown
    assert all(r["new_other_cpu"] is None for r in compare_files(base, ROUNDS_SLOW).rows)


LOADED = DATA / "loaded"


def test_a_real_a_a_pair_under_load_raises_no_alarm(tmp_path):
    """Two real sweeps of one commit on the loaded shared machine (tests/data/nightly/README.md,
    `loaded/`): lenet5 b8 train fell 74%, every round, while the other processes' share of the
    CPUs rose from 58% to 84%. The load record turns that false alarm into `not_comparable`; the
    same files without the record would exit 1."""
    comparison = compare_files(LOADED / "rounds_a.csv", LOADED / "rounds_b.csv")
    verdicts = _verdicts(comparison)
    assert verdicts.pop(("lenet5", "8", "train")) == stats.NOT_COMPARABLE
    assert set(verdicts.values()) == {stats.SAME}
    assert main(["compare", str(LOADED / "rounds_a.csv"), str(LOADED / "rounds_b.csv")]) == 0

    def forget_load(rows):
        for row in rows:
            row["other_cpu_frac"] = ""
    blind_a = _edited(tmp_path, LOADED / "rounds_a.csv", "blind_a.csv", forget_load)
    blind_b = _edited(tmp_path, LOADED / "rounds_b.csv", "blind_b.csv", forget_load)
    assert _verdicts(compare_files(blind_a, blind_b))[("lenet5", "8", "train")] == stats.SLOWER


def test_a_move_under_heavy_load_is_not_comparable(tmp_path):
    """Other processes took 60% of the CPUs during both rows (the same load, so no difference):
    what is left for the benchmark changes from minute to minute, so a move is not judged."""
    heavy = {SLOWED: 0.6}
    base = _with_load(tmp_path, ROUNDS_A, "base.csv", heavy)
    new = _with_load(tmp_path, ROUNDS_SLOW, "new.csv", heavy)
    row = next(r for r in compare_files(base, new).rows if (r["model"], r["batch_size"], r["mode"]) == SLOWED)
    assert row["verdict"] == stats.NOT_COMPARABLE and "heavy load" in row["note"] and "60% vs 60%" in row["note"]
    assert main(["compare", str(base), str(new)]) == 0
