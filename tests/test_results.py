"""The measurements committed under results/ are whole, self-consistent kbench rows.

These check the files, not the hardware: the schema of this kbench version, no key twice, the
derived columns recomputed from the measured ones, the environment recorded, and the harness
overhead on GPU within the 3% the sweep promises.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kbench.common import devices
from kbench.common.csvio import ROW_CHECK_COLUMN, to_csv_text
from kbench.results.schema import (DATA_COLUMNS, LATER_COLUMNS, SWEEP_COLUMNS, is_older_header, read_rows, row_is_whole,
                                   row_key, row_problem)

RESULTS = Path(__file__).resolve().parent.parent / "results"
GPU_SWEEPS = sorted(RESULTS.glob("sweep-gpu-*.csv"))


def test_gpu_results_are_committed():
    assert GPU_SWEEPS, "no GPU sweep CSV under results/"
    rows = [r for path in GPU_SWEEPS for r in read_rows(path)]
    wanted = {(b, m) for b in ("128", "256") for m in ("infer", "train")}
    got = {(r["batch_size"], r["mode"]) for r in rows if r["model"] == "resnet50" and r["backend"] == "jax"
           and r["precision"] == "mixed_bfloat16" and r["status"] == "ok" and r["device"].startswith("gpu")}
    assert got == wanted


@pytest.mark.parametrize("path", GPU_SWEEPS, ids=lambda p: p.name)
def test_gpu_rows_are_consistent(path):
    rows = read_rows(path)  # header of this version, known statuses
    assert rows
    keys = [row_key(r) for r in rows]
    assert len(keys) == len(set(keys))
    for r in rows:
        assert r["status"] == "ok", r["error"]
        assert r["git_commit"] and not r["git_commit"].endswith("+dirty")
        for column in ("run_id", "timestamp", "host", "kbench_version", "keras_version", "backend_version",
                       "device_kind"):
            assert r[column], column
        sps, flops = float(r["samples_per_s"]), float(r["flops_tf"])
        achieved = flops * devices.flops_multiplier(r["mode"]) * sps / 1e12
        assert float(r["achieved_tflops"]) == pytest.approx(achieved, rel=1e-4)
        peak = devices.peak_tflops(r["device"], r["device_kind"], r["precision"])
        assert float(r["peak_tflops"]) == pytest.approx(peak)
        assert float(r["mfu"]) == pytest.approx(achieved / peak, rel=1e-4)
        # p50 latency and throughput describe the same steps: batch / p50 within the spread
        assert int(r["batch_size"]) / (float(r["latency_ms_p50"]) / 1000) == pytest.approx(sps, rel=0.25)
        assert float(r["peak_mem_mb"]) > 0 and r["peak_mem_source"] == "device"


def test_gpu_rows_were_measured_at_committed_revisions():
    """Each row names the commit it ran at, and that commit is in this repository's history."""
    commits = {r["git_commit"] for path in GPU_SWEEPS for r in read_rows(path)}
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for commit in commits:
        assert subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode == 0, commit


def test_gpu_harness_overhead_within_3_percent():
    files = sorted(RESULTS.glob("overhead-gpu-*.json"))
    assert files
    for path in files:
        for mode, record in json.loads(path.read_text()).items():
            assert record["mode"] == mode and record["backend"] == "jax"
            assert abs(record["ratio"] - 1) <= 0.03, (path.name, mode, record["ratio"])
            assert len(record["harness_all"]) == len(record["minimal_all"]) == record["repeats"]


def test_older_sweep_csvs_are_still_read(tmp_path):
    """A CSV written before the rounds columns and the row check existed (the committed GPU sweeps
    are) is read with those columns empty; any other header is refused."""
    older = list(DATA_COLUMNS[:-len(LATER_COLUMNS)])
    assert is_older_header(older) and is_older_header(list(DATA_COLUMNS))
    assert not is_older_header(older[:-1]) and not is_older_header(list(SWEEP_COLUMNS))
    assert not is_older_header(older + ["rounds"])  # a later column out of place
    assert not is_older_header([ROW_CHECK_COLUMN] + older)  # the check anywhere but last
    row = {c: "" for c in older}
    row.update(model="lenet5", batch_size="1", status="ok", samples_per_s="10")
    path = tmp_path / "old.csv"
    path.write_text(",".join(older) + "\n" + ",".join(row[c] for c in older) + "\n")
    (read,) = read_rows(path)
    assert read["samples_per_s"] == "10" and all(read[c] == "" for c in (*LATER_COLUMNS, ROW_CHECK_COLUMN))
    for path in GPU_SWEEPS:
        assert all(set(LATER_COLUMNS) <= set(r) for r in read_rows(path))


def test_a_checked_row_stays_valid_when_later_columns_are_appended(tmp_path):
    """A file of a version with the row check but fewer data columns (as this version's files
    will be for the next one): its header is an older one, and its rows' checks still match
    with the columns it lacks read as empty."""
    columns = list(DATA_COLUMNS[:-2]) + [ROW_CHECK_COLUMN]
    assert is_older_header(columns)
    row = {"model": "lenet5", "batch_size": "1", "status": "ok", "samples_per_s": "10", "mode": "infer",
           "rounds": "2", "samples_per_s_rounds": "9;11"}
    path = tmp_path / "checked-older.csv"
    path.write_text(to_csv_text(columns, [row]))
    (read,) = read_rows(path)
    assert read[ROW_CHECK_COLUMN] and row_is_whole(read) and row_problem(read) is None
    assert not row_is_whole({**read, "samples_per_s_rounds": "9;12"})
