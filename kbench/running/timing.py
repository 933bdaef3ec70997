"""Measuring one configuration: the compiled step, warm-up, the timed loop and its statistics.

This is the pure measurement; it runs inside a worker process (``kbench.running.worker``), one Keras
backend per process, and knows nothing of the sweep or the line protocol.

What one configuration measures:

* Synthetic data, created once on the device: ``x ~ N(0, 1)`` of shape (batch, h, w, c) and
  integer class labels (or zero targets, MSE loss, for dense-prediction outputs).
* The compiled step is Keras' own ``train_step`` / ``predict_step``, compiled the way Keras'
  ``fit``/``predict`` compile it, minus the data iterator and callbacks (per backend:
  ``kbench.running.backends``): TensorFlow ``tf.function(step, jit_compile=jit)`` (jit = XLA; off is
  still a graph function); JAX ``jax.jit(step, donate_argnums=0)`` over the stateless state
  tuple (off = eager JAX); torch eager (jit on torch is refused by the sweep as ``skipped``).
  A training step is forward + loss + backward + SGD(momentum=0.9) update (+ loss scaling
  under ``mixed_float16``, which Keras adds itself); inference is ``predict_step``.
* ``compile_s``: wall time of the first call (tracing + compilation + one step).
* ``warmup`` untimed steps (once), then ``rounds`` rounds of ``iters`` timed steps each, the
  device synchronised after each step (TF: ``.numpy()`` of the step's outputs; JAX:
  ``block_until_ready`` on outputs and state; torch: ``cuda.synchronize`` on GPU, nothing on
  CPU where eager ops are synchronous). One ``perf_counter`` read per step: step i's time is
  the gap between consecutive reads, so a round's latencies add up exactly to its wall time
  and its throughput is ``batch * iters / wall``. Between rounds the harness does nothing but
  start the next round's clock (no per-step extra work: ``kbench overhead``).
* ``samples_per_s`` = the median of the per-round throughputs, ``samples_per_s_iqr`` their
  interquartile range, ``rounds`` and ``samples_per_s_rounds`` (the values, ';'-joined) for
  ``kbench compare``'s rank test (``kbench.results.stats.summarize_rounds``).
* ``latency_ms_p50/p90/p99/std/mean/min`` over all timed steps of all rounds; ``cv`` = std / mean.
* ``other_cpu_frac``: the share of the machine's CPU time (all cores) that *other* processes
  used while the configuration ran (Linux ``/proc/stat`` busy time minus this process's own),
  over the whole configuration: from before the model is built to after the last round, and
  never less than ``MIN_LOAD_WINDOW_S`` (a configuration that finishes sooner is measured from an
  earlier reading of the same worker, or waits out the rest, idle, before the second reading),
  so that every ``ok`` row has it wherever /proc exists (``LoadWindow``); for a process group,
  minus its other processes' own shares too (``kbench.running.supervisor.combine_results``). ``kbench compare`` does not judge two rows
  measured under very different load (``kbench.nightly.compare``).

``minimal_loop`` is the smallest possible loop over the same compiled step (no per-step
timestamps); ``overhead_check`` reports what the harness costs per step and the paired ratio of
both loops with its interval (the harness-overhead check, ``kbench overhead --model resnet18 --input-size 64 --batch-size 8``).

A configuration is a dict: ``request`` (``kbench.models.registry.ModelRequest.to_payload()``),
``batch_size``, ``mode``, ``precision``, ``jit``, ``warmup``, ``iters``, ``rounds`` (default 1) and
optionally ``n_devices`` (> 1: data parallelism, ``kbench.running.backends.DataParallel``; ``batch_size`` is then
the global batch, split over the devices, and the split is checked before the first step) and
``n_processes`` (> 1: this worker is one of that many processes of one ``jax.distributed`` job, each
feeding its part of the global batch and timing the same steps; ``steps`` in the result counts the
steps this process ran, for the parent's check that all ran alike).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

from kbench.common.devices import host_rss_mb
from kbench.running import backends
from kbench.results import stats
from kbench.results.schema import MODES, PRECISIONS  # noqa: F401 - the vocabulary of a configuration
from kbench.counting.layer_walk import count_params
from kbench.models.session import forget_models



# ----------------------------------------------------------------------------- pure helpers

OOM_MARKERS = ("resourceexhausted", "resource_exhausted", "out of memory", "outofmemory", "oom when allocating",
               "failed to allocate", "cuda error: out of memory")


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(marker in text for marker in OOM_MARKERS)


def one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:limit]


def step_stats(step_times_s, batch_size: int) -> dict[str, float]:
    """Throughput and latency statistics from one block of per-step times (seconds)."""
    latency = stats.latency_stats(step_times_s)  # raises ValueError unless all times are positive
    return {"samples_per_s": batch_size * len(step_times_s) / float(sum(step_times_s)), **latency}


def read_cpu_times(proc_stat: str, self_stat: str) -> tuple[int, int, int]:
    """(busy, total, own) clock ticks from the text of /proc/stat and /proc/self/stat.

    busy = total - idle - iowait over all CPUs (the aggregate ``cpu`` line; steal counts as
    busy: time the hypervisor gave to another guest); own = this process's utime + stime (all
    its threads). Both files count in the same unit (USER_HZ ticks)."""
    fields = proc_stat.split("\n", 1)[0].split()
    if not fields or fields[0] != "cpu":
        raise ValueError("no aggregate cpu line in /proc/stat")
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(ticks)
    busy = total - ticks[3] - ticks[4]
    after_name = self_stat[self_stat.rindex(")") + 2:].split()  # the name may hold spaces
    own = int(after_name[11]) + int(after_name[12])  # fields 14 (utime) and 15 (stime)
    return busy, total, own


MIN_LOAD_TICKS = 50


def cpu_snapshot() -> tuple[int, int, int] | None:
    try:
        with open("/proc/stat") as machine, open("/proc/self/stat") as own:
            return read_cpu_times(machine.read(), own.read())
    except (OSError, ValueError, IndexError):
        return None


def cpu_shares(before, after) -> tuple[float | None, float | None]:
    """(other, own): the shares (0..1) of all CPUs' time between two ``cpu_snapshot``s that went
    to other processes and to this one. (None, None) without both snapshots or when too little
    time passed to tell: fewer than ``MIN_LOAD_TICKS`` ticks over all CPUs (USER_HZ is 100:
    0.25 s on 2 cores), where one tick of rounding would move a share by more than 2%."""
    if before is None or after is None:
        return None, None
    busy, total, own = (a - b for a, b in zip(after, before))
    if total < MIN_LOAD_TICKS:
        return None, None
    return min(1.0, max(0.0, (busy - own) / total)), min(1.0, max(0.0, own / total))


def other_cpu_fraction(before, after) -> float | None:
    """The share of all CPUs' time that went to other processes (``cpu_shares``)."""
    return cpu_shares(before, after)[0]


MIN_LOAD_WINDOW_S = 1.0
_READINGS: list[tuple[float, tuple[int, int, int]]] = []  # this process's recent (monotonic time, snapshot)


def cpu_reading() -> tuple[float, tuple[int, int, int] | None]:
    """(now, ``cpu_snapshot()``), kept among this process's recent readings (``LoadWindow``)."""
    now, snapshot = time.monotonic(), cpu_snapshot()
    if snapshot is not None:
        _READINGS.append((now, snapshot))
        del _READINGS[:-8]
    return now, snapshot


class LoadWindow:
    """``other_cpu_frac`` over a window of at least ``min_s`` seconds: opened before a
    configuration's model is built, closed after its last round. A sub-second window is a
    handful of clock ticks, too few to tell the other processes' share (``other_cpu_fraction``
    returns None below ``MIN_LOAD_TICKS``), so a shorter configuration's window starts earlier:
    at the latest reading of this process taken at least ``min_s`` before the close (the
    configuration before it in a warm worker; this process's own CPU time is never counted as
    the others'); with none, closing waits (idle) for the rest of ``min_s``."""

    def __init__(self, min_s: float = MIN_LOAD_WINDOW_S):
        self.min_s = min_s
        self.started, self.before = cpu_reading()

    def close(self) -> tuple[float | None, float | None]:
        """(other, own) CPU shares over the window (``cpu_shares``)."""
        now, before = time.monotonic(), self.before
        if now - self.started < self.min_s:
            earlier = [snapshot for at, snapshot in _READINGS if now - at >= self.min_s]
            if earlier:
                before = earlier[-1]
            else:
                time.sleep(self.min_s - (now - self.started))
        _, after = cpu_reading()
        return cpu_shares(before, after)


# ----------------------------------------------------------------------------- loops

def timed_loop(step: Callable[[], Any], sync: Callable[[Any], Any], iters: int) -> list[float]:
    """The sweep's measured loop: per-step times from one clock read per step."""
    clock = time.perf_counter
    times = []
    append = times.append
    previous = clock()
    for _ in range(iters):
        sync(step())
        now = clock()
        append(now - previous)
        previous = now
    return times


def timed_rounds(step: Callable[[], Any], sync: Callable[[Any], Any], iters: int,
                 rounds: int) -> tuple[list[list[float]], float | None, float | None]:
    """``rounds`` blocks of ``timed_loop``; returns the per-round step times and the CPU shares
    of other processes (``other_cpu_frac``) and of this one over the whole block
    (``cpu_shares``; None where /proc is not available)."""
    before = cpu_snapshot()
    per_round = [timed_loop(step, sync, iters) for _ in range(rounds)]
    after = cpu_snapshot()
    return (per_round, *cpu_shares(before, after))


def minimal_loop(step: Callable[[], Any], sync: Callable[[], Any], iters: int, batch_size: int) -> float:
    """Reference: the simplest hand-written loop over the same step; returns samples/s."""
    start = time.perf_counter()
    for _ in range(iters):
        sync(step())
    return batch_size * iters / (time.perf_counter() - start)


# ----------------------------------------------------------------------------- building the step

def make_data(model, batch_size: int, mode: str, seed: int = 0):
    """Synthetic (x, y) on the device, created once. y: class ids (2-D outputs) or zeros."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[1:])
    x = ops.convert_to_tensor(rng.standard_normal((batch_size, *shape), dtype=np.float32))
    if mode != "train":
        return x, None, None
    ys, losses = [], []
    import keras

    for out in model.outputs:
        out_shape = tuple(out.shape[1:])
        if len(out_shape) == 1:
            ys.append(ops.convert_to_tensor(rng.integers(0, out_shape[0], size=(batch_size,), dtype=np.int32)))
            losses.append(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        else:
            ys.append(ops.convert_to_tensor(np.zeros((batch_size, *out_shape), dtype=np.float32)))
            losses.append(keras.losses.MeanSquaredError())
    if len(ys) == 1:
        return x, ys[0], losses[0]
    return x, tuple(ys), losses


def build_step(model, mode: str, jit: bool, x, y=None, loss=None, parallel=None):
    """(step, sync): ``step()`` runs one compiled step, ``sync(out)`` waits for the device.
    ``parallel`` (``kbench.running.backends.DataParallel``): the batch split over its devices, checked."""
    import keras

    backend = backends.active()
    if mode == "train":
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss=loss,
                      jit_compile=bool(jit) and backend.supports_jit)
        data = (x, y)
        if hasattr(model, "_symbolic_build"):  # what fit()/train_on_batch() do before the first step
            model._symbolic_build(data_batch=data)
        elif not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    else:
        data = (x,)
    if parallel is not None:
        data = parallel.distribute(data)
        parallel.check(model, data)
        return parallel.make_step(model, mode, jit, data)
    return backend.make_step(model, mode, jit, data)


def check_precision(model, precision: str) -> None:
    """Fail (an ``error`` row) unless every layer with weights computes in ``precision``'s dtype.

    A row labelled mixed_bfloat16 that silently ran in float32 is worse than no row.
    """
    import keras

    expected = keras.DTypePolicy(precision).compute_dtype
    wrong = [f"{layer.name} ({layer.compute_dtype})" for layer in model._flatten_layers(include_self=False)
             if layer.weights and not layer._layers and layer.compute_dtype != expected]
    if model.compute_dtype != expected or wrong:
        raise RuntimeError(f"precision {precision} not applied: model computes in {model.compute_dtype}; "
                           f"layers not in {expected}: {', '.join(wrong[:5]) or 'none'}"
                           f"{' ...' if len(wrong) > 5 else ''}")


def model_memory_mb(peak_mb: float | None, source: str, baseline_mb: float | None) -> float | None:
    """The model's own working set (``model_mem_mb``): on CPU (``host_rss``) the configuration's
    peak resident set minus the worker's resident set just before the model was built, which is
    mostly the framework itself (TensorFlow alone is several hundred MB); on a device, the
    allocator's peak, which counts only the framework's tensors. None when it cannot be told."""
    if peak_mb is None:
        return None
    if source == "host_rss":
        return None if baseline_mb is None else max(peak_mb - baseline_mb, 0.0)
    if source.startswith("host"):
        return None  # a lifetime peak minus today's baseline would mean nothing
    return peak_mb


def prepare(cfg: dict, clean: bool = True):
    """Build the model for ``cfg`` under its precision policy; return (model, step, sync).
    It first forgets every model built before (``forget_models``), so that each configuration
    starts from the same state whatever the worker ran earlier; ``clean=False``: the caller has
    just done so."""
    import keras

    from kbench.models.registry import ModelRequest

    if clean:
        forget_models()
    n_devices = int(cfg.get("n_devices", 1))
    # Data parallelism: the model is built and compiled inside the strategy's scope.
    parallel = backends.active().data_parallel(n_devices) if n_devices > 1 else None
    if parallel is not None and parallel.processes > 1:
        keras.utils.set_random_seed(0)  # every process initialises the same (replicated) weights
    with parallel.scope() if parallel else contextlib.nullcontext():
        # After clear_session, which resets the global dtype policy along with the rest of Keras' state.
        keras.config.set_dtype_policy(cfg["precision"])
        try:
            model = ModelRequest.from_payload(cfg["request"]).build()
        finally:
            keras.config.set_dtype_policy("float32")
        check_precision(model, cfg["precision"])
        # Several processes: each makes its own part of the global batch (its own samples).
        processes, index = (parallel.processes, parallel.process_index) if parallel else (1, 0)
        if processes != int(cfg.get("n_processes", 1)):
            raise RuntimeError(f"{cfg.get('n_processes', 1)} processes requested, this worker's job has {processes}")
        x, y, loss = make_data(model, cfg["batch_size"] // processes, cfg["mode"], seed=index)
        step, sync = build_step(model, cfg["mode"], bool(cfg["jit"]), x, y, loss, parallel)
    return model, step, sync


def measure(cfg: dict, device: dict | None = None, before_build: Callable[[dict], None] | None = None,
            keep: Callable[[Any], None] | None = None) -> dict:
    """Run one configuration; return the result record (status ok/oom/error + numbers).

    ``before_build(cfg)`` runs first inside the same error handling (the worker's fault hook);
    ``keep(model)`` is given the measured model of an ``ok`` configuration, after every number
    was taken (the worker profiles it).
    """
    backend = backends.active()
    device = device or backend.detect()
    base = {"device": device["device"], "device_kind": device["device_kind"], "n_iters": cfg["iters"],
            "warmup": cfg["warmup"]}
    model = None
    try:
        if before_build is not None:
            before_build(cfg)
        load = LoadWindow()  # the whole configuration: build, compile, warm-up and rounds
        forget_models()
        backend.peak_memory_reset(device["device"])
        baseline_mb = host_rss_mb()  # the framework loaded, no model of this configuration built yet
        model, step, sync = prepare(cfg, clean=False)
        params = count_params(model)["params_trainable"]
        started = time.perf_counter()
        sync(step())
        compile_s = time.perf_counter() - started
        for _ in range(cfg["warmup"]):
            sync(step())
        per_round, _, _ = timed_rounds(step, sync, cfg["iters"], cfg.get("rounds", 1))
        steps = 1 + cfg["warmup"] + sum(len(times) for times in per_round)
        other_cpu, own_cpu = load.close()
        peak, source = backend.peak_memory_mb(device["device"])
        throughputs = [cfg["batch_size"] * len(times) / sum(times) for times in per_round]
        summary = stats.summarize_rounds(throughputs, [t for times in per_round for t in times])
        if keep is not None:
            keep(model)
        return {**base, "status": "ok", "error": "", **summary, "other_cpu_frac": other_cpu,
                "compile_s": compile_s, "peak_mem_mb": peak, "peak_mem_source": source,
                "model_mem_mb": model_memory_mb(peak, source, baseline_mb), "params_trainable": params,
                "steps": steps, "own_cpu_frac": own_cpu}
    except backends.DeviceShortage as exc:
        return {**base, "status": "skipped", "error": one_line(exc)}
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row
        status = "oom" if is_oom(exc) else "error"
        return {**base, "status": status, "error": one_line(exc)}
    finally:
        del model


def _noop():
    return None


def _noop1(_):
    return None


OVERHEAD_TOLERANCE = 0.03  # the harness must stay within 3% of the minimal loop
OVERHEAD_CONFIDENCE = 0.95
OVERHEAD_PAIRS = (10, 200)  # --repeats auto: at least, at most this many pairs of loops


def paired_ratio_interval(harness: list[float], minimal: list[float],
                          confidence: float = OVERHEAD_CONFIDENCE) -> tuple[float, float, float]:
    """(median, low, high) of the per-pair ratios harness/minimal: the median with its
    percentile-bootstrap interval (scipy, a fixed seed, so one set of pairs gives one interval)."""
    import numpy as np
    from scipy import stats as scipy_stats

    ratios = np.asarray(harness, dtype=float) / np.asarray(minimal, dtype=float)
    median = float(np.median(ratios))
    if len(ratios) < 2 or np.ptp(ratios) == 0:
        return median, median, median
    found = scipy_stats.bootstrap((ratios,), np.median, confidence_level=confidence, method="percentile",
                                  n_resamples=2000, random_state=np.random.default_rng(0))
    return median, float(found.confidence_interval.low), float(found.confidence_interval.high)


def loop_cost_per_step(n: int = 200_000) -> float:
    """Seconds the sweep's timed loop adds per step over the minimal loop, both over a no-op step:
    the harness's own cost, free of any model's noise."""
    harness = sum(timed_loop(_noop, _noop1, n)) / n
    minimal = 1.0 / minimal_loop(_noop, _noop1, n, 1)
    return max(0.0, harness - minimal)


def overhead_check(cfg: dict, repeats: int | None = None, tolerance: float = OVERHEAD_TOLERANCE) -> dict:
    """How much the sweep's ``timed_loop`` costs against ``minimal_loop`` over one compiled step.

    The headline is the loops' own per-step cost over a no-op step and its share of this model's
    step: that is what the harness adds, and it is far below what a measurement can resolve.
    Beside it, the paired ratio harness/minimal on the real step: pairs of loops run back to back
    (the order alternating, so neither always runs first on a warming or throttling machine), the
    median of the per-pair ratios with a bootstrap interval. ``repeats=None`` adds pairs, ten at a
    time, until the interval decides (inside 1 +- ``tolerance``, or wholly outside it) or
    ``OVERHEAD_PAIRS[1]`` pairs ran;
    a fixed ``repeats`` runs exactly that many. ``verdict`` says what the interval shows.
    """
    import numpy as np

    _, step, sync = prepare(cfg)
    for _ in range(cfg["warmup"] + 1):
        sync(step())
    harness, minimal = [], []

    def add_pair():
        order = ("harness", "minimal") if len(harness) % 2 == 0 else ("minimal", "harness")
        for which in order:
            if which == "harness":
                harness.append(step_stats(timed_loop(step, sync, cfg["iters"]), cfg["batch_size"])["samples_per_s"])
            else:
                minimal.append(minimal_loop(step, sync, cfg["iters"], cfg["batch_size"]))

    def decided(low: float, high: float) -> str | None:
        if low >= 1 - tolerance and high <= 1 + tolerance:
            return (f"within {tolerance:.0%}: the {OVERHEAD_CONFIDENCE:.0%} interval of the paired ratio is inside "
                    f"1 +- {tolerance:.0%}")
        if high < 1 - tolerance:
            return f"slower: the harness loop is more than {tolerance:.0%} slower than the minimal loop"
        if low > 1 + tolerance:
            return f"faster: the harness loop is more than {tolerance:.0%} faster than the minimal loop (a machine effect)"
        return None

    fewest, most = (repeats, repeats) if repeats else OVERHEAD_PAIRS
    while len(harness) < most:
        add_pair()
        if len(harness) >= fewest and len(harness) % 10 == 0 and decided(*paired_ratio_interval(harness, minimal)[1:]):
            break
    ratio, low, high = paired_ratio_interval(harness, minimal)
    extra_s = loop_cost_per_step()
    step_s = cfg["batch_size"] / float(np.median(minimal))
    verdict = decided(low, high)
    if verdict is None:
        verdict = (f"inconclusive: the {OVERHEAD_CONFIDENCE:.0%} interval [{low:.3f}, {high:.3f}] is not inside "
                   f"1 +- {tolerance:.0%}; rerun on a quieter machine or with more --repeats / --iters")
    request = cfg["request"]
    return {"loop_overhead_us_per_step": extra_s * 1e6, "loop_overhead_fraction": extra_s / step_s,
            "ratio": ratio, "ratio_interval": [low, high], "confidence": OVERHEAD_CONFIDENCE, "verdict": verdict,
            "model": request["model"], "input_shape": request["input_shape"], "batch_size": cfg["batch_size"],
            "mode": cfg["mode"], "backend": backends.active().name, "jit": bool(cfg["jit"]), "iters": cfg["iters"],
            "repeats": len(harness), "harness_samples_per_s": float(np.median(harness)),
            "minimal_samples_per_s": float(np.median(minimal)),
            "ratio_of_medians": float(np.median(harness) / np.median(minimal)),
            "harness_all": harness, "minimal_all": minimal}
