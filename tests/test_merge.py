"""``kbench merge``: shard CSVs joined into one row per key; conflicts reported, the newest ok row
wins; inputs never touched. And the end-to-end property: three real shards (one of them killed
and resumed) merge into exactly the unsharded plan's keys."""

from __future__ import annotations

import pytest

from kbench.cli import main
from kbench.common.csvio import to_csv_text
from kbench.results.schema import KEY_COLUMNS, SWEEP_COLUMNS
from sweep_processes import kill_sweep_after_first_row


def _row(**values):
    row = {c: "" for c in SWEEP_COLUMNS}
    row.update({"run_id": "r1", "timestamp": "2026-12-01T10:00:00+00:00", "model": "lenet5", "family": "lenet",
                "input_h": "32", "input_w": "32", "batch_size": "1", "mode": "infer", "backend": "tensorflow",
                "precision": "float32", "jit": "false", "status": "ok", "samples_per_s": "100.0"})
    row.update({k: str(v) for k, v in values.items()})
    return row


def _write(path, rows):
    path.write_text(to_csv_text(SWEEP_COLUMNS, rows))
    return path


def read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str)


def test_merge_one_row_per_key_newest_ok_wins(tmp_path, capsys):
    a = _write(tmp_path / "a.csv", [
        _row(batch_size=1),
        _row(batch_size=2, status="error", error="boom", samples_per_s="", timestamp="2026-12-01T12:00:00+00:00"),
        _row(batch_size=4, samples_per_s="10", timestamp="2026-12-01T09:00:00+00:00"),
    ])
    b = _write(tmp_path / "b.csv", [
        _row(batch_size=1),  # the same row again: no conflict
        _row(batch_size=2, samples_per_s="55", timestamp="2026-12-01T11:00:00+00:00"),  # ok beats a newer error
        _row(batch_size=4, samples_per_s="20", timestamp="2026-12-01T09:30:00+00:00"),  # the newer ok wins
        _row(batch_size=8, status="timeout", samples_per_s="", timestamp="2026-12-01T08:00:00+00:00"),
    ])
    c = _write(tmp_path / "c.csv", [
        # no ok row for batch 8: the newest row wins
        _row(batch_size=8, status="error", samples_per_s="", timestamp="2026-12-01T08:05:00+00:00"),
        _row(mode="train"),
    ])
    before = {p: p.read_bytes() for p in (a, b, c)}
    out = tmp_path / "merged.csv"
    assert main(["merge", str(out), str(a), str(b), str(c)]) == 0
    err = capsys.readouterr().err
    assert {p: p.read_bytes() for p in (a, b, c)} == before  # inputs untouched
    df = read(out)
    assert list(df.columns) == list(SWEEP_COLUMNS)
    assert not df.duplicated(list(KEY_COLUMNS)).any()
    got = {(r["mode"], r["batch_size"]): (r["status"], r["samples_per_s"]) for _, r in df.iterrows()}
    assert got == {("infer", "1"): ("ok", "100.0"), ("infer", "2"): ("ok", "55"), ("infer", "4"): ("ok", "20"),
                   ("infer", "8"): ("error", ""), ("train", "1"): ("ok", "100.0")}
    assert [(r["mode"], r["batch_size"]) for _, r in df.iterrows()] == [  # first-appearance order
        ("infer", "1"), ("infer", "2"), ("infer", "4"), ("infer", "8"), ("train", "1")]
    lines = err.strip().splitlines()
    conflicts = [ln for ln in lines if "different rows" in ln]
    assert len(conflicts) == 3  # batch 2, 4 and 8; batch 1 was identical
    assert any("batch_size=2" in ln and "kept ok" in ln and "dropped error" in ln for ln in conflicts)
    assert "3 keys with conflicting rows" in lines[-1] and "into 5 rows" in lines[-1]


def test_merge_refuses_an_existing_out_unless_forced(tmp_path, capsys):
    a = _write(tmp_path / "a.csv", [_row()])
    out = tmp_path / "merged.csv"
    out.write_text("precious\n")
    assert main(["merge", str(out), str(a)]) == 2
    assert out.read_text() == "precious\n"
    assert main(["merge", str(out), str(a), "--force"]) == 0
    assert len(read(out)) == 1


def test_merge_mismatched_header_writes_nothing(tmp_path, capsys):
    a = _write(tmp_path / "a.csv", [_row()])
    other = tmp_path / "other.csv"
    other.write_text(to_csv_text([c for c in SWEEP_COLUMNS if c != "cv"], [_row()]))
    out = tmp_path / "merged.csv"
    assert main(["merge", str(out), str(a), str(other)]) == 2
    err = capsys.readouterr().err
    assert "missing columns cv" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# ----------------------------------------------------------------------------- real shards

FAST = ["--warmup", "0", "--iters", "2", "--no-progress"]
# four groups (2 modes x 2 precisions) of one tiny model over three shards
PLAN = ["--models", "lenet5", "--input-size", "32", "--batch-sizes", "1,2", "--modes", "infer,train",
        "--precision", "float32,mixed_bfloat16", "--no-jit"]


def _planned_keys():
    from kbench.models import registry
    from kbench.running.plan import ResolvedSweep, SweepSpec, plan

    spec = SweepSpec(models=["lenet5"], batch_sizes=[1, 2], modes=["infer", "train"],
                     precisions=["float32", "mixed_bfloat16"], backends=["tensorflow"], jit="off",
                     input_size=(32, 32))
    return sorted(c.key for c in plan(ResolvedSweep(spec, [registry.resolve("lenet5", (32, 32))])))


@pytest.mark.slow  # five real sweeps (minutes on 2 cores); the shard arithmetic is tested in test_shard.py
def test_three_shards_with_a_kill_merge_into_the_unsharded_plan(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    outs = [tmp_path / f"shard{k}.csv" for k in (1, 2, 3)]
    common = [*PLAN, *FAST, "--profile-cache", cache]
    # shard 3 holds the two inference groups (the cheapest, 1+1 against 3 and 3): killed after its first
    # row, then resumed
    assert main(["sweep", *common, "--shard", "1/3", "--out", str(outs[0])]) == 0
    killed_args = [*common, "--shard", "3/3", "--out", str(outs[2])]
    kill_sweep_after_first_row(killed_args, outs[2], timeout_s=400)
    kept = read(outs[2])
    assert 1 <= len(kept) < 4
    assert main(["sweep", *killed_args, "--resume"]) == 0
    assert main(["sweep", *common, "--shard", "2/3", "--out", str(outs[1])]) == 0
    parts = [read(p) for p in outs]
    assert [len(p) for p in parts] == [2, 2, 4]
    assert set(parts[2]["mode"]) == {"infer"} and set(parts[0]["mode"]) == set(parts[1]["mode"]) == {"train"}
    assert parts[2]["run_id"].nunique() == 2  # the killed run's rows and the resumed run's
    keys = [tuple(r[c] for c in KEY_COLUMNS) for p in parts for _, r in p.iterrows()]
    assert sorted(keys) == _planned_keys()  # the union of the shards is the plan exactly once
    merged = tmp_path / "merged.csv"
    capsys.readouterr()
    assert main(["merge", str(merged), *map(str, outs)]) == 0
    assert "0 keys with conflicting rows" in capsys.readouterr().err
    df = read(merged)
    assert sorted(tuple(r[c] for c in KEY_COLUMNS) for _, r in df.iterrows()) == _planned_keys()
    assert set(df["status"]) == {"ok"}


def test_an_empty_n_devices_is_one_device(tmp_path, capsys):
    """Rows written without n_devices (by hand, another tool) have the key of n_devices = 1."""
    a = _write(tmp_path / "a.csv", [_row(n_devices="")])
    b = _write(tmp_path / "b.csv", [_row(n_devices="1", samples_per_s="120", timestamp="2026-12-02T10:00:00+00:00")])
    out = tmp_path / "merged.csv"
    assert main(["merge", str(out), str(a), str(b)]) == 0
    df = read(out)
    assert len(df) == 1 and df.iloc[0]["samples_per_s"] == "120"
    assert "1 keys with conflicting rows" in capsys.readouterr().err
