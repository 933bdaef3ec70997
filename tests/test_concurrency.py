"""Several writers on one CSV: one header, each key once (kbench.common.csvio.CsvLog's lock around
read-decide-append); --resume keeps a complete last row without its newline; --retry-failed
replaces the failed row, one row per key. Torch with --jit writes ``skipped`` rows without
starting a worker, which keeps the multi-process sweep test fast."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.results.schema import KEY_COLUMNS, SWEEP_COLUMNS

ROOT = Path(__file__).resolve().parent.parent


def _read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str)


def _claim_keys(path: str, keys: int):
    from kbench.common.csvio import CsvLog

    log = CsvLog(path, ["key", "pid"])
    for key in range(keys):
        with log.locked():
            if str(key) not in {row["key"] for row in log.rows()}:
                log.append({"key": key, "pid": os.getpid()})
    log.close()


def test_four_writers_one_header_each_key_once(tmp_path):
    path = tmp_path / "shared.csv"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_claim_keys, args=(str(path), 60)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    lines = path.read_text().splitlines()
    assert lines[0] == "key,pid" and lines.count("key,pid") == 1
    assert sorted(int(line.split(",")[0]) for line in lines[1:]) == list(range(60))


@pytest.fixture(scope="module")
def profile_cache(tmp_path_factory):
    from kbench.models import registry
    from kbench.running.profile_cache import ProfileCache

    directory = tmp_path_factory.mktemp("profiles")
    ProfileCache(directory).store(registry.resolve("lenet5", (32, 32)).to_payload(),
                                  {"params_trainable": 61706, "macs": 416520, "flops_tf": 846346})
    return str(directory)


SKIPPED = ["--models", "lenet5", "--input-size", "32", "--modes", "infer,train", "--backend", "torch", "--jit",
           "--no-progress"]


def test_four_concurrent_sweeps_on_one_new_file(tmp_path, profile_cache):
    out = tmp_path / "shared.csv"
    argv = [sys.executable, "-m", "kbench", "sweep", *SKIPPED, "--batch-sizes", "1,2,3,4,5,6,7,8", "--resume",
            "--profile-cache", profile_cache, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    text = out.read_text()
    assert text.count("run_id,") == 1
    df = _read(out)
    assert len(df) == 16 and not df.duplicated(list(KEY_COLUMNS)).any()
    assert set(df["status"]) == {"skipped"}


def test_resume_keeps_a_complete_last_row_without_newline(tmp_path, profile_cache):
    out = tmp_path / "nonewline.csv"
    args = ["sweep", *SKIPPED, "--profile-cache", profile_cache, "--out", str(out)]
    assert main([*args, "--batch-sizes", "1"]) == 0
    first = out.read_text()
    out.write_text(first.rstrip("\n"))  # an editor dropped the final newline
    assert main([*args, "--batch-sizes", "1,2", "--resume"]) == 0
    df = _read(out)
    assert len(df) == 4 and not df.duplicated(list(KEY_COLUMNS)).any()
    assert out.read_text().startswith(first)  # the first run's rows, untouched


def test_retry_failed_replaces_the_failed_row(tmp_path, profile_cache, monkeypatch):
    out = tmp_path / "retry.csv"
    args = ["sweep", "--models", "lenet5", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer",
            "--no-jit", "--warmup", "0", "--iters", "1", "--no-progress", "--profile-cache", profile_cache,
            "--out", str(out)]
    row = {c: "" for c in SWEEP_COLUMNS}
    row.update({"run_id": "old", "model": "lenet5", "family": "lenet", "input_h": "32", "input_w": "32",
                "batch_size": "1", "mode": "infer", "backend": "tensorflow", "precision": "float32", "jit": "false",
                "status": "error", "error": "earlier failure"})
    done = dict(row, batch_size="2", status="ok", error="", samples_per_s="50")
    out.write_text(",".join(SWEEP_COLUMNS) + "\n" + ",".join(row.values()) + "\n" + ",".join(done.values()) + "\n")
    assert main(args + ["--resume"]) == 0
    assert _read(out)["error"].tolist() == ["earlier failure", ""]  # --resume alone keeps failures
    monkeypatch.setenv("KBENCH_FAULT_INJECT", "lenet5:1:infer=error")
    assert main(args + ["--resume", "--retry-failed"]) == 0
    df = _read(out)
    assert len(df) == 2 and not df.duplicated(list(KEY_COLUMNS)).any()
    retried = df[df["batch_size"] == "1"].iloc[0]
    assert retried["run_id"] != "old" and "simulated error" in retried["error"]
    assert df[df["batch_size"] == "2"].iloc[0]["run_id"] == "old"  # other rows kept as they were


def test_a_writer_whose_file_was_removed_by_another_starts_it_again(tmp_path, monkeypatch):
    """Two writers on one new CSV; the first one's first row fails (a full disk), so it removes
    the file it created. The second, holding the old file open, locks the path's new file and
    writes the header before its row: never a row without a header."""
    import errno

    from kbench.common.csvio import CsvLog, read_header, read_rows
    from kbench.errors import UsageError

    path = tmp_path / "shared.csv"
    columns = ["model", "batch_size"]
    first, second = CsvLog(path, columns), CsvLog(path, columns)
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with first.locked(), pytest.raises(UsageError, match="No space left"):
        first.append({"model": "lenet5", "batch_size": 1})
    monkeypatch.setattr(os, "write", real_write)
    assert not path.exists()
    with second.locked():
        second.append({"model": "lenet5", "batch_size": 2})
    first.close(), second.close()
    assert read_header(path) == columns and read_rows(path) == [{"model": "lenet5", "batch_size": "2"}]
