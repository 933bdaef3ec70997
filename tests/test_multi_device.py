"""Data-parallel rows (``kbench sweep --devices 1,2,4``) on simulated CPU devices: ok rows with
n_devices, per_device_batch and scaling_efficiency, the split across devices checked, an
indivisible batch skipped. Simulated devices share the machine's cores: nothing here asserts a
speed-up, only correctness and the row schema."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.common.csvio import to_csv_text
from kbench.results.schema import KEY_COLUMNS, SWEEP_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--warmup", "0", "--iters", "2", "--no-progress"]


def read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=str)


def _sweep(tmp_path, backend, mode):
    out = tmp_path / f"{backend}.csv"
    code = main(["sweep", "--models", "lenet5", "--input-size", "32", "--batch-sizes", "1,2,4,6", "--modes", mode,
                 "--backend", backend, "--devices", "1,2,4", *FAST, "--out", str(out),
                 "--profile-cache", str(tmp_path / "cache")])
    assert code == 0
    return read(out)


def _check_rows(df):
    assert not df.duplicated(list(KEY_COLUMNS)).any()
    rows = {(r["n_devices"], r["batch_size"]): r for _, r in df.iterrows()}
    assert len(rows) == 12
    skipped = {k for k, r in rows.items() if r["status"] == "skipped"}
    # a global batch that n does not divide is skipped without being tried, with the reason
    assert skipped == {("2", "1"), ("4", "1"), ("4", "2"), ("4", "6")}
    for key in skipped:
        assert "not divisible by" in rows[key]["error"] and rows[key]["samples_per_s"] == ""
        assert rows[key]["per_device_batch"] == "" and rows[key]["scaling_efficiency"] == ""
    ok = {k: r for k, r in rows.items() if k not in skipped}
    assert all(r["status"] == "ok" for r in ok.values()), {k: r["error"] for k, r in ok.items()}
    for (n, batch), r in ok.items():
        assert r["per_device_batch"] == str(int(batch) // int(n))
        assert float(r["samples_per_s"]) > 0
    # efficiency: 1 on one device; samples/s(n) / (n x samples/s(1)) at the same per-device batch;
    # empty when there is no 1-device row at that per-device batch (b6 on 2 devices: no b3 row)
    assert all(float(ok[("1", b)]["scaling_efficiency"]) == 1.0 for b in ("1", "2", "4", "6"))
    for n, batch in (("2", "2"), ("2", "4"), ("4", "4")):
        per = str(int(batch) // int(n))
        expected = float(ok[(n, batch)]["samples_per_s"]) / (int(n) * float(ok[("1", per)]["samples_per_s"]))
        assert float(ok[(n, batch)]["scaling_efficiency"]) == pytest.approx(expected, rel=1e-3)
    assert ok[("2", "6")]["scaling_efficiency"] == ""


@pytest.mark.slow  # about 100 s on 2 cores; the split checks below run both backends in the default suite
def test_jax_sweep_over_1_2_4_simulated_devices(tmp_path):
    _check_rows(_sweep(tmp_path, "jax", "train"))


@pytest.mark.slow
def test_tensorflow_sweep_over_1_2_4_simulated_devices(tmp_path):
    _check_rows(_sweep(tmp_path, "tensorflow", "infer"))


# The split check itself, in a fresh process per backend (devices must be set up before the
# framework starts): the batch split and the weights replicated pass; a batch left whole on
# one device, or weights created outside the strategy, are refused.
CHECK_SCRIPT = textwrap.dedent("""
    import os, sys
    from kbench.running.backends import BACKENDS
    name = os.environ["KERAS_BACKEND"]
    os.environ.update(BACKENDS[name].worker_env(2))
    BACKENDS[name].prepare_devices(2)
    import keras
    from kbench.models import registry
    from kbench.running import timing
    parallel = BACKENDS[name].data_parallel(2)
    with parallel.scope():
        model = registry.resolve("lenet5", (32, 32)).build()
    x, _, _ = timing.make_data(model, 4, "infer")
    data = parallel.distribute((x,))
    parallel.check(model, data)
    print("split ok")
    try:
        parallel.check(model, (x,))
    except RuntimeError as exc:
        print("whole batch refused:", exc)
    outside = registry.resolve("lenet5", (32, 32)).build()
    try:
        parallel.check(outside, data)
    except RuntimeError as exc:
        print("unreplicated weights refused:", exc)
    step, sync = parallel.make_step(model, "infer", False, data)
    sync(step())
    print("step ok")
""")


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_the_split_is_checked(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", CHECK_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "split ok" and lines[-1] == "step ok"
    assert any(ln.startswith("whole batch refused: the global batch") for ln in lines), lines
    assert any(ln.startswith("unreplicated weights refused: weight") for ln in lines), lines


def test_skip_reasons_without_a_worker():
    from kbench.models import registry
    from kbench.running.plan import Config

    request = registry.resolve("lenet5", (32, 32))
    assert "not divisible by 4 devices" in Config(request, 6, "infer", "jax", "float32", True, 0, 1, n_devices=4).skip_reason()
    assert "#21167" in Config(request, 6, "infer", "jax", "float32", True, 0, 1, n_devices=4).skip_reason()
    assert Config(request, 8, "infer", "jax", "float32", True, 0, 1, n_devices=4).skip_reason() == ""
    assert "not on torch" in Config(request, 8, "infer", "torch", "float32", False, 0, 1, n_devices=2).skip_reason()
    assert Config(request, 8, "infer", "torch", "float32", False, 0, 1, n_devices=1).skip_reason() == ""


def test_worker_env_simulates_jax_devices(monkeypatch):
    from kbench.running.backends import BACKENDS

    monkeypatch.setenv("XLA_FLAGS", "--xla_foo=1 --xla_force_host_platform_device_count=2")
    assert BACKENDS["jax"].worker_env(4) == {"XLA_FLAGS": "--xla_foo=1 --xla_force_host_platform_device_count=4"}
    assert BACKENDS["jax"].worker_env(1) == {} and BACKENDS["tensorflow"].worker_env(4) == {}


def _row(**values):
    row = {c: "" for c in SWEEP_COLUMNS}
    row.update({"run_id": "r", "timestamp": "2026-12-01T10:00:00+00:00", "model": "lenet5", "input_h": "32",
                "input_w": "32", "mode": "train", "backend": "jax", "precision": "float32", "jit": "true",
                "status": "ok", "device_kind": "cpu", "n_devices": "1"})
    row.update({k: str(v) for k, v in values.items()})
    row["per_device_batch"] = str(int(row["batch_size"]) // int(row["n_devices"]))
    return row


def test_merge_computes_efficiency_across_shards(tmp_path):
    """The 1-device row in one shard, the 2- and 4-device rows in another."""
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text(to_csv_text(SWEEP_COLUMNS, [_row(batch_size=2, samples_per_s=100)]))
    b.write_text(to_csv_text(SWEEP_COLUMNS, [
        _row(batch_size=4, n_devices=2, samples_per_s=150),
        _row(batch_size=8, n_devices=4, samples_per_s=400),
        _row(batch_size=8, n_devices=2, samples_per_s=300),  # per-device 4: no 1-device b4 row
    ]))
    out = tmp_path / "m.csv"
    assert main(["merge", str(out), str(a), str(b)]) == 0
    got = {(r["n_devices"], r["batch_size"], r["device_kind"]): r["scaling_efficiency"]
           for _, r in read(out).iterrows()}
    assert got == {("1", "2", "cpu"): "1.0", ("2", "4", "cpu"): "0.75", ("4", "8", "cpu"): "1.0",
                   ("2", "8", "cpu"): ""}


def test_efficiency_needs_the_same_device_kind_and_an_ok_baseline():
    from kbench.results import scaling

    two = _row(batch_size=4, n_devices=2, samples_per_s=150)
    assert scaling.efficiency(two, [_row(batch_size=2, samples_per_s=100)]) == 0.75
    assert scaling.efficiency(two, [_row(batch_size=2, samples_per_s=100, device_kind="NVIDIA H100")]) == ""
    assert scaling.efficiency(two, [_row(batch_size=2, status="error", samples_per_s="")]) == ""
    assert scaling.efficiency({**two, "status": "error"}, [_row(batch_size=2, samples_per_s=100)]) == ""


def test_more_devices_than_the_worker_sees_is_a_skipped_row():
    """In this (TensorFlow) test process there is one CPU device and no simulated ones."""
    from kbench.models import registry
    from kbench.running import timing

    cfg = {"request": registry.resolve("lenet5", (32, 32)).to_payload(), "batch_size": 64, "mode": "infer",
           "precision": "float32", "jit": False, "warmup": 0, "iters": 1, "n_devices": 64}
    result = timing.measure(cfg)
    assert result["status"] == "skipped" and "64 devices requested, this worker sees 1" in result["error"]
