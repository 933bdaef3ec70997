"""The README's Slurm job array and its one model over the tasks of one srun step (``kbench sweep
--processes 2 --launcher srun``) on a real one-node Slurm (``scripts/slurm_local.sh``), and the
check of the array's merge (``scripts/slurm/check_merge.py``).

The end-to-end run installs Slurm if needed and starts daemons as root, so it is marked ``slurm``
and left out of the default suite: ``pytest -m slurm tests/test_slurm.py``. The checker's own
tests are quick and run by default."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbench.results.schema import KEY_COLUMNS, SWEEP_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
PLAN = ["--models", "lenet5", "--input-size", "32", "--batch-sizes", "1,2", "--modes", "infer,train"]


def load_checker():
    spec = importlib.util.spec_from_file_location("check_merge", ROOT / "scripts" / "slurm" / "check_merge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_sweep(path: Path, keys, status="ok", timestamp="2025-01-01T00:00:00+00:00") -> str:
    """A sweep CSV of this version whose rows have the given resume keys."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS)
        writer.writeheader()
        for key in keys:
            row = dict.fromkeys(SWEEP_COLUMNS, "")
            row.update(zip(KEY_COLUMNS, key))
            row.update(status=status, timestamp=timestamp, samples_per_s="10" if status == "ok" else "")
            writer.writerow(row)
    return str(path)


def test_check_merge_accepts_a_plan_covered_once(tmp_path):
    checker = load_checker()
    keys = checker.plan_keys(PLAN)
    assert len(keys) == 4 and len(set(keys)) == 4  # lenet5 x 2 batches x 2 modes, from kbench's plan
    merged = write_sweep(tmp_path / "merged.csv", keys)
    shards = [write_sweep(tmp_path / "1.csv", keys[:3]), write_sweep(tmp_path / "2.csv", keys[3:])]
    problems, summary = checker.check(merged, shards, PLAN)
    assert problems == []
    assert summary == "4 rows merged from shards of 3+1 rows, plan covered exactly once, 0 duplicates, all ok"


def test_check_merge_reports_missing_duplicate_extra_and_failed_rows(tmp_path):
    checker = load_checker()
    keys = checker.plan_keys(PLAN)
    other = checker.plan_keys(["--models", "resnet18", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer"])
    merged = write_sweep(tmp_path / "merged.csv", keys[:2] + keys[1:2] + other)
    shards = [write_sweep(tmp_path / "1.csv", keys), write_sweep(tmp_path / "2.csv", keys[:1])]
    problems, _ = checker.check(merged, shards, PLAN)
    text = "\n".join(problems)
    assert "1 duplicate rows" in text
    assert "2 planned configurations missing" in text
    assert "1 rows of" in text and "resnet18|32|32" in text
    assert "measured twice" in text

    failed = write_sweep(tmp_path / "failed.csv", keys, status="error")
    problems, summary = checker.check(failed, [failed], PLAN)
    assert len(problems) == 4 and all(p.startswith("not ok: ") for p in problems)
    assert summary.endswith("4 not ok")


def test_check_merge_command_line(tmp_path):
    checker = load_checker()
    keys = checker.plan_keys(PLAN)
    merged = write_sweep(tmp_path / "merged.csv", keys)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "scripts" / "slurm" / "check_merge.py")]
    done = subprocess.run([*command, merged, merged, "--", *PLAN], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("4 rows merged from shards of 4 rows, plan covered exactly once")
    done = subprocess.run([*command, merged, merged, "--", *PLAN, "--precision", "float32,mixed_bfloat16"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "4 planned configurations missing" in done.stderr and done.stdout == ""
    assert subprocess.run([*command, merged], capture_output=True, env=env).returncode == 2


@pytest.mark.slurm
def test_slurm_local_runs_the_job_array_and_a_process_group_as_one_srun_step(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("scripts/slurm_local.sh runs the Slurm daemons as root")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("no Slurm and no apt-get to install it")
    merged = tmp_path / "merged.csv"
    env = {**os.environ, "KBENCH_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), str(merged)], capture_output=True, text=True, env=env,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    print(lines[0])  # shown by pytest -rA or -s
    assert re.fullmatch(r"slurm_local: 3 array tasks \(job \d+, all COMPLETED\) \+ merge job, 8 rows merged from "
                        r"shards of \d\+\d\+\d rows, plan covered exactly once, 0 duplicates, all ok; "
                        r"process-group job \(2 tasks of one srun step\): lenet5 b4 train ok, n_devices 2, "
                        r"n_processes 2, [\d.]+ samples/s; hung group: timeout, 2 processes killed \(\d+ s\)",
                        lines[0]), lines[0]
    rows = list(csv.DictReader(merged.open()))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    assert {r["model"] for r in rows} == {"lenet5", "resnet18"}
    # nothing left behind: no state directory, no daemon of this run
    assert "state in " in done.stderr
    state = re.search(r"state in (\S+)\)", done.stderr).group(1)
    assert not Path(state).exists()
    left = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if state in (proc / "cmdline").read_bytes().decode(errors="replace"):
                left.append(proc.name)
        except OSError:
            pass
    assert not left, f"processes of the run still alive: {left}"
