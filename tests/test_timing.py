"""The measurement (kbench.running.timing), the device table (kbench.common.devices), row arithmetic,
repeatability and the harness-overhead check.

Nothing in the default suite asserts on a measured time or throughput: on a shared 2-core
machine those vary by tens of percent from run to run. Such checks are ``@pytest.mark.slow``."""

from __future__ import annotations

import json
import statistics
import time

import pytest

import numpy as np

from kbench.common import devices
from kbench.results import stats
from kbench.running import timing


def test_step_stats_known_values():
    s = timing.step_stats([0.010, 0.020, 0.030, 0.040], batch_size=8)
    assert s["samples_per_s"] == pytest.approx(8 * 4 / 0.100)
    assert s["latency_ms_p50"] == pytest.approx(25.0)
    assert s["latency_ms_mean"] == pytest.approx(25.0)
    assert s["latency_ms_min"] == pytest.approx(10.0)
    assert s["latency_ms_std"] == pytest.approx(statistics.stdev([10, 20, 30, 40]))
    assert s["cv"] == pytest.approx(statistics.stdev([10, 20, 30, 40]) / 25.0)
    assert s["latency_ms_p50"] <= s["latency_ms_p90"] <= s["latency_ms_p99"] <= 40.0
    with pytest.raises(ValueError):
        timing.step_stats([], 1)


@pytest.mark.parametrize("exc, oom", [
    (MemoryError(), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 123 bytes"), True),
    (type("ResourceExhaustedError", (Exception,), {})("OOM when allocating tensor"), True),
    (ValueError("Input 0 of layer conv is incompatible"), False),
])
def test_oom_classification(exc, oom):
    assert timing.is_oom(exc) is oom


@pytest.mark.parametrize("name, expected", [
    ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA A10", "A10"), ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H200", "H200"), ("NVIDIA L4", "L4"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"), ("Tesla T4", "T4"), ("Intel(R) Xeon(R) Processor", None),
])
def test_device_table(name, expected):
    peak = devices.lookup(name)
    assert (peak.name if peak else None) == expected


def test_peaks_per_precision_and_override():
    assert devices.peak_tflops("gpu:0", "NVIDIA A100-SXM4-40GB", "mixed_bfloat16") == 312.0
    assert devices.peak_tflops("gpu:0", "NVIDIA A100-SXM4-40GB", "float32") == 156.0  # TF32
    assert devices.peak_tflops("gpu:0", "Tesla T4", "float32") == 8.1  # no TF32 on Turing
    assert devices.peak_tflops("gpu:0", "Tesla T4", "mixed_bfloat16") is None
    assert devices.peak_tflops("cpu", "Intel Xeon", "float32") is None
    assert devices.peak_tflops("cpu", "Intel Xeon", "float32", override=2.5) == 2.5


def test_row_arithmetic_mfu():
    from kbench.models import registry
    from kbench.running.plan import Config
    from kbench.running.rows import make_row

    cfg = Config(registry.resolve("lenet5", (32, 32)), 8, "train", "tensorflow", "float32", True, 1, 3)
    result = {"status": "ok", "samples_per_s": 1000.0, "device": "gpu:0", "device_kind": "NVIDIA H100 80GB HBM3"}
    row = make_row(cfg, result, {"flops_tf": 2e9, "macs": 1e9}, "r", {}, None)
    assert row["achieved_tflops"] == pytest.approx(3 * 2e9 * 1000 / 1e12)
    assert row["peak_tflops"] == pytest.approx(494.7) and row["mfu"] == pytest.approx(6.0 / 494.7, rel=1e-4)
    row = make_row(cfg, {**result, "device": "cpu"}, {"flops_tf": 2e9}, "r", {}, None)
    assert row["mfu"] == "" and row["achieved_tflops"] == pytest.approx(6.0)
    row = make_row(cfg, {"status": "oom", "error": "x"}, {}, "r", {}, None)
    assert row["samples_per_s"] == "" and row["achieved_tflops"] == "" and row["flops_tf"] == ""


def _cfg(variant=None, **kw):
    request = {"model": "resnet18", "input_shape": [32, 32, 3], "num_classes": 1000,
               "variant": {"blocks": [1, 1, 1, 1]} if variant is None else variant}
    base = dict(request=request, batch_size=4, mode="infer", precision="float32", jit=False, warmup=5, iters=40)
    return {**base, **kw}


def test_measure_in_process_record():
    """The record of one measurement: status, bookkeeping, per-step statistics consistent with
    each other. Nothing here depends on how fast the machine is."""
    r = timing.measure(_cfg(iters=5, warmup=1))
    assert r["status"] == "ok", r.get("error")
    assert r["n_iters"] == 5 and r["warmup"] == 1 and r["error"] == ""
    assert r["params_trainable"] > 0 and r["peak_mem_mb"] > 0 and r["peak_mem_source"] == "host_rss"
    assert r["cv"] >= 0 and r["compile_s"] > 0
    assert r["latency_ms_min"] <= r["latency_ms_p50"] <= r["latency_ms_p90"] <= r["latency_ms_p99"]
    assert r["device"] == "cpu" and r["device_kind"]


def test_measure_in_rounds():
    """R rounds of `iters` steps after one warm-up: the row's throughput is the median of the R
    per-round throughputs, its spread their IQR, the R values kept in order; the latency
    percentiles cover all R x iters steps."""
    r = timing.measure(_cfg(iters=3, warmup=1, rounds=4))
    assert r["status"] == "ok", r.get("error")
    values = stats.parse_rounds(r["samples_per_s_rounds"])
    assert r["rounds"] == 4 and len(values) == 4 and r["n_iters"] == 3
    assert r["samples_per_s"] == pytest.approx(statistics.median(values), rel=1e-5)
    q1, q3 = np.percentile(values, [25, 75])
    assert r["samples_per_s_iqr"] == pytest.approx(q3 - q1, rel=1e-4, abs=1e-9)
    # the load guard is always on where /proc exists: the window spans the whole configuration
    if timing.cpu_snapshot() is None:
        assert r["other_cpu_frac"] is None
    else:
        assert 0 <= r["other_cpu_frac"] <= 1
    # the latencies are those of all 12 steps: their mean is the rounds' total time / 12
    round_wall_s = [4 * 3 / v for v in values]
    assert r["latency_ms_mean"] == pytest.approx(1000 * sum(round_wall_s) / 12, rel=1e-4)
    assert r["latency_ms_min"] <= 1000 * min(round_wall_s) / 3 * (1 + 1e-4)
    assert r["latency_ms_p99"] >= r["latency_ms_p50"] >= r["latency_ms_min"]


def test_timed_rounds_are_blocks_of_timed_loops():
    calls = []
    per_round, other, own = timing.timed_rounds(lambda: calls.append("step"), lambda out: None, iters=3, rounds=4)
    assert [len(times) for times in per_round] == [3, 3, 3, 3] and calls == ["step"] * 12
    assert (other is None) == (own is None) and (other is None or 0 <= other <= 1 and 0 <= own <= 1)


PROC_STAT = ("cpu  1000 50 300 8000 100 10 20 5 0 0\n"
             "cpu0 500 25 150 4000 50 5 10 2 0 0\n")
SELF_STAT = "4242 (python (a) b) S 1 2 3 0 -1 4194560 100 0 0 0 70 30 0 0 20 0 8 0 1 2 3\n"


def test_read_cpu_times_from_proc_text():
    """busy = all CPUs' ticks minus idle and iowait (steal counts: another guest ran); own =
    utime + stime, found after the last ')' so that a process name with spaces or ')' parses."""
    busy, total, own = timing.read_cpu_times(PROC_STAT, SELF_STAT)
    assert total == 1000 + 50 + 300 + 8000 + 100 + 10 + 20 + 5
    assert busy == total - 8000 - 100
    assert own == 70 + 30
    with pytest.raises(ValueError):
        timing.read_cpu_times("intr 1 2 3\n", SELF_STAT)


def test_other_cpu_fraction_from_two_snapshots():
    # 400 ticks passed over all CPUs, 200 busy, 100 of them this process: others used a quarter
    assert timing.other_cpu_fraction((100, 1000, 20), (300, 1400, 120)) == pytest.approx(0.25)
    assert timing.cpu_shares((100, 1000, 20), (300, 1400, 120)) == pytest.approx((0.25, 0.25))
    assert timing.other_cpu_fraction((100, 1000, 20), (130, 1400, 120)) == 0.0  # own > busy: rounding, clipped
    assert timing.other_cpu_fraction((100, 1000, 20), (120, 1020, 25)) is None  # too short to tell
    assert timing.other_cpu_fraction(None, (120, 1400, 25)) is None  # no /proc
    snapshot = timing.cpu_snapshot()
    assert snapshot is None or (snapshot[0] <= snapshot[1] and snapshot[2] >= 0)


def test_a_load_window_lasts_long_enough_to_tell(monkeypatch):
    """A window closed at once, in a process with no earlier reading, still spans ``min_s``
    (waiting): enough clock ticks for a share."""
    monkeypatch.setattr(timing, "_READINGS", [])
    started = time.monotonic()
    window = timing.LoadWindow(min_s=0.6)
    other, own = window.close()
    assert time.monotonic() - started >= 0.6
    if timing.cpu_snapshot() is not None:
        assert other is not None and 0 <= other <= 1 and own is not None and 0 <= own <= 1


def test_a_short_window_starts_at_an_earlier_reading_instead_of_waiting(monkeypatch):
    """A warm worker's short configuration: the window reaches back to the process's latest
    reading at least ``min_s`` old (the configuration before it) rather than idling."""
    timing.cpu_reading()
    time.sleep(0.4)
    window = timing.LoadWindow(min_s=0.3)
    monkeypatch.setattr(timing.time, "sleep", lambda seconds: pytest.fail(f"waited {seconds} s"))
    other, own = window.close()
    if timing.cpu_snapshot() is not None:
        assert other is not None and 0 <= other <= 1 and own is not None and 0 <= own <= 1


def test_timed_loop_bookkeeping():
    """One clock read per step: as many step times as steps, each positive, and the step/sync
    callables called once per step in order."""
    calls = []
    times = timing.timed_loop(lambda: calls.append("step") or len(calls), lambda out: calls.append("sync"), 5)
    assert len(times) == 5 and all(t > 0 for t in times)
    assert calls == ["step", "sync"] * 5


@pytest.mark.slow
def test_measure_in_process_and_repeatability():
    """Two back-to-back measurements of one configuration agree within 25% on the median step.

    Tolerance: this host is a shared 2-core VM where other test processes run at the same time;
    run-to-run spread of 10-30% is the norm on shared CI runners, so a
    tighter gate would be flaky. The median (p50) is compared, not the mean, because one
    descheduled step shifts the mean but not the median. Each run also reports its cv.
    The process is warmed first by one discarded measurement: the first configuration in a
    fresh process also pays one-off costs (thread pools, oneDNN primitive caches) that the
    sweep's long-lived workers pay once, and that made the first of two runs up to 1.5x slower.
    """
    timing.measure(_cfg())
    first = timing.measure(_cfg())
    second = timing.measure(_cfg())
    for r in (first, second):
        assert r["status"] == "ok", r.get("error")
        assert r["n_iters"] == 40 and r["cv"] >= 0
        assert r["params_trainable"] > 0 and r["peak_mem_mb"] > 0 and r["peak_mem_source"] == "host_rss"
    ratio = second["latency_ms_p50"] / first["latency_ms_p50"]
    assert 0.75 <= ratio <= 1 / 0.75, (first, second)


@pytest.mark.parametrize("precision,compute", [("float32", "float32"), ("mixed_float16", "float16"),
                                               ("mixed_bfloat16", "bfloat16")])
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_precision_is_applied(precision, compute, mode):
    """The model is built under the requested policy (clear_session resets the global policy,
    so the order matters) and the step runs: weights stay float32, layers compute in `compute`."""
    model, step, sync = timing.prepare(_cfg(precision=precision, mode=mode, batch_size=2))
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert convs and all(layer.compute_dtype == compute for layer in convs)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    import keras

    out = step()
    sync(out)
    if mode == "infer":
        assert keras.backend.standardize_dtype(out.dtype) == compute  # the logits Dense computes in the policy's dtype too
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_precision_check_rejects_a_model_built_in_another_dtype():
    from kbench.models import registry

    model = registry.build("lenet5")  # built under float32
    with pytest.raises(RuntimeError, match="precision mixed_bfloat16 not applied"):
        timing.check_precision(model, "mixed_bfloat16")
    timing.check_precision(model, "float32")


def test_git_commit_override(monkeypatch):
    from kbench.common import env

    env.git_commit.cache_clear()
    monkeypatch.setenv("KBENCH_GIT_COMMIT", "feedfacecafe")
    try:
        assert env.git_commit() == "feedfacecafe"
    finally:
        env.git_commit.cache_clear()


def test_measure_reports_errors_as_records():
    r = timing.measure(_cfg(variant={"blocks": "not-a-list"}))
    assert r["status"] == "error" and r["error"]


def test_measure_runs_the_hook_inside_its_error_handling():
    def fail(cfg):
        raise MemoryError("no room")

    r = timing.measure(_cfg(), before_build=fail)
    assert r["status"] == "oom" and "no room" in r["error"]


def test_overhead_check_record():
    """The overhead record's structure (the numbers themselves: the slow tests below): the no-op
    cost first, then the paired ratio inside its interval, then the loops' medians."""
    r = timing.overhead_check(_cfg(iters=3, warmup=1), repeats=2)
    assert list(r)[:2] == ["loop_overhead_us_per_step", "loop_overhead_fraction"]
    assert r["model"] == "resnet18" and r["input_shape"] == [32, 32, 3] and r["backend"] == "tensorflow"
    assert r["repeats"] == 2 and len(r["harness_all"]) == len(r["minimal_all"]) == 2
    assert r["harness_samples_per_s"] > 0 and r["minimal_samples_per_s"] > 0
    assert r["loop_overhead_us_per_step"] >= 0 and r["loop_overhead_fraction"] >= 0
    low, high = r["ratio_interval"]
    assert low <= r["ratio"] <= high and r["confidence"] == 0.95
    assert r["verdict"].split(":")[0] in ("within 3%", "slower", "faster", "inconclusive")


def test_paired_ratio_interval_is_the_bootstrap_of_the_median():
    """Ratios 0.9..1.1 around 1.0: the median is 1.0, its interval holds it and is reproducible;
    identical ratios give a zero-width interval; a 10% slower harness is outside 1 +- 3%."""
    harness = [90 + i for i in range(21)]
    minimal = [100.0] * 21
    median, low, high = timing.paired_ratio_interval(harness, minimal)
    assert median == 1.0 and low < 1.0 < high and (low, high) == timing.paired_ratio_interval(harness, minimal)[1:]
    assert timing.paired_ratio_interval([5.0] * 4, [5.0] * 4) == (1.0, 1.0, 1.0)
    assert timing.paired_ratio_interval([90.0, 89.0, 91.0] * 5, [100.0] * 15)[2] < 0.97


def test_overhead_repeats_auto_stops_when_the_interval_is_narrow(monkeypatch):
    """--repeats auto adds pairs ten at a time until the interval is within the tolerance: with
    loops that agree exactly it stops at the first check (10 pairs), and says so."""
    monkeypatch.setattr(timing, "minimal_loop", lambda step, sync, iters, batch: 100.0 if iters < 1000 else 1e7)
    monkeypatch.setattr(timing, "step_stats", lambda times, batch: {"samples_per_s": 100.0})
    r = timing.overhead_check(_cfg(iters=1, warmup=0))
    assert r["repeats"] == 10 and r["ratio_interval"] == [1.0, 1.0] and r["verdict"].startswith("within 3%")


@pytest.mark.slow
def test_loop_overhead_is_small():
    """What the harness adds per step (one clock read + append), measured over a no-op step, is
    far below 3% of even this tiny model's step. Slow: a measured time."""
    r = timing.overhead_check(_cfg(iters=10, warmup=2), repeats=2)
    assert 0 <= r["loop_overhead_us_per_step"] < 50
    assert r["loop_overhead_fraction"] < 0.03


def test_overhead_command(capfd):
    """``kbench overhead`` prints one JSON record; bad input exits 2 on one line."""
    from kbench.cli import main

    assert main(["overhead", "--model", "lenet5", "--input-size", "32", "--batch-size", "2", "--iters", "2",
                 "--warmup", "1", "--repeats", "1"]) == 0
    record = json.loads(capfd.readouterr().out)
    assert record["model"] == "lenet5" and record["input_shape"] == [32, 32, 1] and record["repeats"] == 1
    for argv, needle in ((["--model", "no_such_net"], "unknown model"), (["--batch-size", "0"], "--batch-size"),
                         (["--mode", "eval"], "eval"), (["--input-size", "8", "--model", "lenet5"], "too small"),
                         (["--repeats", "many"], "auto or an integer")):
        assert main(["overhead", *argv]) == 2
        err = capfd.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


@pytest.mark.slow
def test_harness_overhead_within_3_percent():
    """The sweep's timed loop vs a minimal loop over the same compiled step (resnet18, 64x64,
    batch 8, the default jit: a TF graph function on CPU, XLA with a GPU), as ``kbench overhead``
    runs it by default: pairs added until the 95% bootstrap interval of the median paired ratio is
    within +-3%; that interval holds 1.0 and lies inside 1 +- 3%.

    Slow and noise-bound (a measured time): on a shared machine the interval may stay wide, and
    the verdict then says ``inconclusive`` instead of passing. The harness's own cost is measured
    noise-free over a no-op step (``loop_overhead_us_per_step``, ~0.2-0.3 us, < 1e-5 of this
    step) and asserted by ``test_loop_overhead_is_small``."""
    from kbench.running.backends import BACKENDS

    cfg = _cfg(variant={}, batch_size=8, jit=BACKENDS["tensorflow"].default_jit(), warmup=10, iters=30)
    cfg["request"]["input_shape"] = [64, 64, 3]
    r = timing.overhead_check(cfg)
    print(json.dumps({k: r[k] for k in ("ratio", "ratio_interval", "repeats", "verdict", "loop_overhead_us_per_step")}))
    low, high = r["ratio_interval"]
    assert 0.97 <= low <= 1.0 <= high <= 1.03, r
