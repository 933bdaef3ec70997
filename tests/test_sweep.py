"""``kbench sweep``: rows and columns, resume after a kill, error/oom/timeout rows, bad input,
other backends. Tiny models and few iterations: these test the harness, not the numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbench.cli import main

# The interface contract (shared/specs/interface.md), written out here on purpose: the test
# must fail if the module's column list drifts from the spec.
REQUIRED = (
    "run_id timestamp model family input_h input_w batch_size mode backend precision jit status error "
    "samples_per_s latency_ms_p50 latency_ms_p90 latency_ms_p99 latency_ms_std compile_s peak_mem_mb "
    "params_trainable macs flops_tf achieved_tflops mfu device device_kind host kbench_version tf_version "
    "keras_version backend_version git_commit"
).split()
KEY = ["model", "input_h", "input_w", "variant", "batch_size", "mode", "backend", "precision", "jit"]
FAST = ["--warmup", "1", "--iters", "3", "--no-progress"]


@pytest.fixture(scope="session")
def profile_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("profile-cache"))


def sweep(args, cache):
    return main(["sweep", *args, "--profile-cache", cache])


def read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str)


@pytest.fixture(scope="module")
def two_model_sweep(tmp_path_factory, profile_cache):
    out = tmp_path_factory.mktemp("sweep") / "two.csv"
    code = sweep(["--models", "lenet5,resnet18", "--input-size", "32", "--batch-sizes", "1,2",
                  "--modes", "infer,train", "--no-jit", "--out", str(out), *FAST], profile_cache)
    return code, out


def test_two_models_rows_and_columns(two_model_sweep):
    code, out = two_model_sweep
    assert code == 0
    df = read(out)
    assert list(df.columns[: len(REQUIRED)]) == REQUIRED
    assert len(df) == 8
    assert set(df["status"]) == {"ok"}, df[["model", "batch_size", "mode", "error"]].to_string()
    assert not df.duplicated(KEY).any()
    assert sorted(zip(df["model"], df["batch_size"], df["mode"])) == sorted(
        (m, b, mode) for m in ("lenet5", "resnet18") for b in ("1", "2") for mode in ("infer", "train"))
    num = df[["samples_per_s", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_std",
              "compile_s", "peak_mem_mb", "cv"]].astype(float)
    assert (num["samples_per_s"] > 0).all() and (num["compile_s"] > 0).all() and (num["peak_mem_mb"] > 0).all()
    assert (num["latency_ms_p50"] <= num["latency_ms_p90"]).all() and (num["latency_ms_p90"] <= num["latency_ms_p99"]).all()
    assert (df["n_iters"] == "3").all() and (df["warmup"] == "1").all()
    assert df["run_id"].nunique() == 1
    for col in ("device", "device_kind", "host", "kbench_version", "tf_version", "keras_version", "backend_version", "timestamp"):
        assert (df[col] != "").all(), col
    assert (df["device"] == "cpu").all() and (df["mfu"] == "").all()  # no CPU peak -> no MFU


def test_flops_and_achieved_tflops(two_model_sweep):
    _, out = two_model_sweep
    df = read(out)
    lenet = df[df["model"] == "lenet5"]
    assert (lenet["macs"] == "416520").all()  # the LeNet-5 count documented in architectures/lenet.py
    assert (lenet["params_trainable"] == "61706").all()
    for _, row in df.iterrows():
        flops, sps = float(row["flops_tf"]), float(row["samples_per_s"])
        mult = 3.0 if row["mode"] == "train" else 1.0
        assert float(row["achieved_tflops"]) == pytest.approx(flops * mult * sps / 1e12, rel=1e-3)


def test_resume_on_finished_file_adds_nothing(two_model_sweep, profile_cache):
    _, out = two_model_sweep
    before = out.read_text()
    code = sweep(["--models", "lenet5,resnet18", "--input-size", "32", "--batch-sizes", "1,2",
                  "--modes", "infer,train", "--no-jit", "--out", str(out), "--resume", *FAST], profile_cache)
    assert code == 0
    assert out.read_text() == before


def test_resume_after_kill(tmp_path, profile_cache):
    out = tmp_path / "killed.csv"
    args = ["--models", "lenet5", "--batch-sizes", "1,2,3", "--modes", "infer,train", "--no-jit",
            "--out", str(out), *FAST, "--profile-cache", profile_cache]
    proc = subprocess.Popen([sys.executable, "-m", "kbench", "sweep", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= 2:  # header + one finished row
                break
            if proc.poll() is not None:
                pytest.fail(f"sweep exited early with {proc.returncode}")
            time.sleep(0.05)
        else:
            pytest.fail("no row within 240 s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, as a hard kill would
        except ProcessLookupError:
            pass
        proc.wait()
    kept = read(out)
    assert 1 <= len(kept) < 6
    with out.open("a") as f:  # and a row torn in the middle of its write
        f.write(kept.iloc[0]["run_id"] + ",2026-01-01T00:00:00+00:00,lenet5,lenet,32,32,3,tra")
    assert main(["sweep", *args, "--resume"]) == 0
    df = read(out)
    assert len(df) == 6 and not df.duplicated(KEY).any()
    assert set(df["status"]) == {"ok"}
    first = df.iloc[: len(kept)]
    assert first[["run_id", "timestamp", "batch_size", "mode"]].equals(kept[["run_id", "timestamp", "batch_size", "mode"]])
    assert df["run_id"].nunique() == 2  # the first run's rows and the resumed run's


def test_failures_become_rows(tmp_path, profile_cache, monkeypatch):
    out = tmp_path / "faults.csv"
    monkeypatch.setenv("KBENCH_FAULT_INJECT",
                       "lenet5:2:infer=oom;lenet5:1:train=error;lenet5:2:train=hang;lenet5:3:train=crash")
    code = sweep(["--models", "lenet5", "--batch-sizes", "1,2,3", "--modes", "infer,train", "--no-jit",
                  "--timeout", "8", "--out", str(out), *FAST], profile_cache)
    assert code == 0
    df = read(out)
    got = {(r["mode"], r["batch_size"]): r for _, r in df.iterrows()}
    assert len(df) == 6
    assert got[("infer", "1")]["status"] == "ok"
    assert got[("infer", "2")]["status"] == "oom" and "out of memory" in got[("infer", "2")]["error"]
    assert got[("infer", "3")]["status"] == "skipped" and "batch 2" in got[("infer", "3")]["error"]
    assert got[("train", "1")]["status"] == "error" and "RuntimeError" in got[("train", "1")]["error"]
    assert got[("train", "2")]["status"] == "timeout"
    # after the timeout the remaining configuration ran in a new worker, which then crashed
    assert got[("train", "3")]["status"] == "error" and "simulated crash" in got[("train", "3")]["error"]
    assert (df[df["status"] != "ok"]["samples_per_s"] == "").all()


@pytest.mark.parametrize("argv, needle", [
    (["--models", "no_such_net"], "unknown model"),
    (["--models", "lenet5", "--batch-sizes", "0"], "positive integers"),
    (["--models", "lenet5", "--precision", "float64"], "float64"),
    (["--models", "lenet5", "--backend", "mxnet"], "mxnet"),
    (["--models", "lenet5", "--modes", "eval"], "eval"),
    (["--models", "lenet5", "--input-size", "8"], "too small"),
])
def test_bad_input_exits_2(tmp_path, capfd, argv, needle, profile_cache):
    out = tmp_path / "never.csv"
    assert sweep([*argv, "--out", str(out), *FAST], profile_cache) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("content", [
    "model,batch\nlenet5,1\n",  # not a sweep CSV
    None,  # a sweep header, then a row with too many fields
])
def test_resume_malformed_csv_exits_2(tmp_path, capfd, content, profile_cache):
    from kbench.sweep import SWEEP_COLUMNS

    out = tmp_path / "bad.csv"
    if content is None:
        content = ",".join(SWEEP_COLUMNS) + "\n" + ",".join(["x"] * (len(SWEEP_COLUMNS) + 3)) + "\n"
    out.write_text(content)
    assert sweep(["--models", "lenet5", "--out", str(out), "--resume", *FAST], profile_cache) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert out.read_text() == content


def test_existing_file_without_resume_exits_2(tmp_path, capfd, profile_cache):
    out = tmp_path / "x.csv"
    out.write_text("a\n1\n")
    assert sweep(["--models", "lenet5", "--out", str(out), *FAST], profile_cache) == 2
    assert "--resume" in capfd.readouterr().err


def test_jax_and_torch_backends(tmp_path, profile_cache):
    out = tmp_path / "backends.csv"
    code = sweep(["--models", "lenet5", "--batch-sizes", "2", "--modes", "infer,train", "--backend", "jax,torch",
                  "--precision", "float32,mixed_bfloat16", "--out", str(out), *FAST], profile_cache)
    assert code == 0
    df = read(out)
    # ok also means the worker's precision check passed: every weighted layer computed in bfloat16
    assert len(df) == 8 and set(df["status"]) == {"ok"}, df[["backend", "precision", "mode", "error"]].to_string()
    assert set(df["backend"]) == {"jax", "torch"}
    assert set(df[df["backend"] == "jax"]["jit"]) == {"true"}  # Keras' default: jit on jax, off on torch
    assert set(df[df["backend"] == "torch"]["jit"]) == {"false"}
    import jax
    import torch

    assert set(df[df["backend"] == "jax"]["backend_version"]) == {jax.__version__}
    assert set(df[df["backend"] == "torch"]["backend_version"]) <= {torch.__version__.split("+")[0], torch.__version__}
    assert (df["flops_tf"] != "").all()  # FLOPs from the (cached) TensorFlow profile


def test_torch_jit_is_a_skipped_row_not_a_hang(tmp_path, profile_cache):
    out = tmp_path / "torchjit.csv"
    started = time.monotonic()
    assert sweep(["--models", "lenet5", "--batch-sizes", "1", "--modes", "infer", "--backend", "torch", "--jit",
                  "--out", str(out), *FAST], profile_cache) == 0
    df = read(out)
    assert list(df["status"]) == ["skipped"] and "torch" in df["error"][0]
    assert time.monotonic() - started < 120


def test_time_budget_leaves_configurations_unrun(tmp_path, profile_cache, capfd):
    out = tmp_path / "budget.csv"
    assert sweep(["--models", "lenet5", "--batch-sizes", "1,2", "--modes", "infer", "--no-jit",
                  "--time-budget", "0.001", "--out", str(out), *FAST], profile_cache) == 0
    assert "time budget exhausted" in capfd.readouterr().err
    assert len(read(out)) == 0  # header only: not-run configurations have no row; --resume runs them


def test_config_file(tmp_path, profile_cache):
    from kbench.commands.sweep import build_spec
    from kbench.cli import build_parser

    cfg = tmp_path / "s.toml"
    cfg.write_text('[sweep]\nmodels = ["lenet5"]\nbatch_sizes = [1, 4]\nmodes = ["infer"]\ntime_budget = 60\n')
    args = build_parser().parse_args(["sweep", "--config", str(cfg), "--batch-sizes", "2"])
    spec = build_spec(args)
    assert spec.models == ["lenet5"] and spec.batch_sizes == [2] and spec.modes == ["infer"]
    assert spec.time_budget_s == 60 and spec.jit == "auto"
    cfg.write_text("[sweep]\nbogus = 1\n")
    from kbench.errors import UsageError

    with pytest.raises(UsageError, match="bogus"):
        build_spec(build_parser().parse_args(["sweep", "--config", str(cfg)]))


def test_nightly_config_is_valid():
    from kbench.commands.sweep import build_spec
    from kbench.cli import build_parser
    from kbench.sweep import plan, validate

    root = Path(__file__).resolve().parent.parent
    spec = build_spec(build_parser().parse_args(["sweep", "--config", str(root / "sweeps" / "nightly.toml")]))
    validate(spec)
    assert spec.time_budget_s and plan(spec)


def test_fresh_worker_per_config(tmp_path, profile_cache, monkeypatch):
    """Where a device peak cannot be reset in-process (JAX on GPU), each configuration gets its
    own worker; KBENCH_FRESH_WORKER=1 forces that path on CPU so it is exercised here."""
    import kbench.sweep as sweep_module

    started = []

    class CountingWorker(sweep_module.Worker):
        def __init__(self, backend, command="worker"):
            super().__init__(backend, command)
            if command == "worker":
                started.append(self.proc.pid)

    monkeypatch.setattr(sweep_module, "Worker", CountingWorker)
    monkeypatch.setenv("KBENCH_FRESH_WORKER", "1")
    out = tmp_path / "fresh.csv"
    assert sweep(["--models", "lenet5", "--batch-sizes", "1,2", "--modes", "infer", "--no-jit",
                  "--out", str(out), *FAST], profile_cache) == 0
    df = read(out)
    assert list(df["status"]) == ["ok", "ok"]
    assert len(set(started)) == 2  # one worker process per configuration


def test_jax_gpu_measures_each_configuration_in_a_fresh_worker(monkeypatch):
    from kbench import devices

    monkeypatch.delenv("KBENCH_FRESH_WORKER", raising=False)
    assert devices.fresh_worker_per_config("jax", "gpu:0")
    assert not devices.fresh_worker_per_config("jax", "cpu")
    assert not devices.fresh_worker_per_config("tensorflow", "gpu:0")
    assert not devices.fresh_worker_per_config("torch", "gpu:0")
