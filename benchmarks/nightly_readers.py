"""Benchmark: the nightly readers (compare, merge, history, report) on two 150k-row sweep CSVs.

Run on purpose (it is not a test, and pytest does not collect it)::

    PYTHONPATH=. .venv/bin/python benchmarks/nightly_readers.py [--rows 150000] [--keep DIR]

It writes two nightly sweep CSVs of ``--rows`` configurations each (``sweep-2026-12-01.csv`` and
``sweep-2026-12-02.csv``: real column values of one recorded row, ``tests/data/nightly/aa/set2/``,
with the key varied over 1,250 model names x 5 input sizes x 6 batch sizes x 2 modes x 2
precisions, 5 rounds each, the second night's rounds moved by a few percent and 1% of the
configurations slowed by 30%; merge joins two copies of the first night; ``other_cpu_frac`` 0.02 everywhere, a quiet machine, so that
compare judges every pair rather than calling it measured under heavy load), then runs each command as its own process on at most 2 CPU
cores (``os.sched_setaffinity``) and reports its wall time and peak resident memory
(``os.wait4``). The targets: each command within ``--max-seconds`` (30) and ``--max-mb``
(1536); exit 1 when one is missed.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests" / "data" / "nightly" / "aa" / "set2" / "pair01_a.csv"
MODELS, INPUTS, BATCHES, MODES, PRECISIONS = 1250, (32, 64, 96, 128, 160), (1, 2, 4, 8, 16, 32), \
    ("infer", "train"), ("float32", "mixed_bfloat16")


def _template() -> tuple[list[str], dict[str, str]]:
    with open(TEMPLATE, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), next(reader)


def write_nights(directory: Path, rows: int, seed: int = 0) -> list[Path]:
    """Two nights of ``rows`` configurations each (see the module docstring)."""
    header, template = _template()
    rng = np.random.default_rng(seed)
    keys = [(m, size, batch, mode, precision) for m in range(MODELS) for size in INPUTS for batch in BATCHES
            for mode in MODES for precision in PRECISIONS][:rows]
    base = rng.lognormal(np.log(500.0), 1.0, size=len(keys))
    spread = rng.lognormal(0.0, 0.05, size=(len(keys), 5))
    slowed = rng.random(len(keys)) < 0.01
    paths = []
    for night, date in enumerate(("2026-12-01", "2026-12-02")):
        shift = rng.lognormal(0.0, 0.03, size=len(keys)) * np.where(slowed & (night == 1), 0.7, 1.0)
        values = base[:, None] * spread * (shift[:, None] if night else 1.0)
        path = directory / f"sweep-{date}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, header, lineterminator="\n")
            writer.writeheader()
            for (model, size, batch, mode, precision), rounds in zip(keys, values):
                row = dict(template)
                row.update(model=f"net{model:04d}", input_h=str(size), input_w=str(size), batch_size=str(batch),
                           other_cpu_frac="0.02",
                           mode=mode, precision=precision, num_classes="10", timestamp=f"{date}T02:00:00+00:00",
                           samples_per_s=f"{np.median(rounds):.6g}",
                           samples_per_s_rounds=";".join(f"{v:.6g}" for v in rounds),
                           samples_per_s_iqr=f"{np.subtract(*np.percentile(rounds, [75, 25])):.6g}")
                writer.writerow(row)
        paths.append(path)
    return paths


def run(command: list[str], cores: set[int]) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak RSS in MB) of one kbench command in its own process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a command's many lines never block it
        proc = subprocess.Popen([sys.executable, "-m", "kbench", *command], env=env, stdout=subprocess.DEVNULL,
                                stderr=errors, preexec_fn=lambda: os.sched_setaffinity(0, cores))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        errors.seek(0)
        stderr = errors.read().decode(errors="replace").strip()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        print(f"  {' '.join(command[:1])} exited {code}: {stderr[-500:]}", file=sys.stderr)
    return code, wall, usage.ru_maxrss / 1024.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--max-mb", type=float, default=1536.0)
    parser.add_argument("--keep", help="write the CSVs and the report here (default: a temporary directory)")
    args = parser.parse_args(argv)
    cores = set(sorted(os.sched_getaffinity(0))[:2])
    with tempfile.TemporaryDirectory(prefix="kbench-bench-") as scratch:
        directory = Path(args.keep or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        base, new = write_nights(directory, args.rows)
        copy = directory / "copy" / base.name  # merge: two copies of one night (outside the nightly directory)
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(base, copy)
        print(f"{args.rows} rows per night written in {time.perf_counter() - started:.1f} s "
              f"({base.stat().st_size / 1e6:.0f} MB each); {len(cores)} cores; "
              f"targets: {args.max_seconds:g} s and {args.max_mb:g} MB per command")
        commands = {
            "compare": ["compare", str(base), str(new), "--format", "csv", "--out", str(directory / "compare.csv"),
                        "--force"],
            "merge": ["merge", str(directory / "merged.csv"), str(base), str(copy), "--force"],
            "history": ["history", str(directory), "--format", "csv", "--out", str(directory / "steps.csv"),
                        "--force"],
            "report": ["report", str(directory), "--out", str(directory / "report"), "--force"],
        }
        missed = []
        for name, command in commands.items():
            code, wall, peak = run(command, cores)
            good = code in (0, 1) and wall <= args.max_seconds and peak <= args.max_mb
            print(f"{name:8s} exit {code}  {wall:6.1f} s  {peak:7.0f} MB  {'ok' if good else 'MISSED'}")
            if not good:
                missed.append(name)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
