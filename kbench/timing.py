"""Measuring one configuration: the compiled step, warm-up, the timed loop and its statistics.

This is the pure measurement; it runs inside a worker process (``kbench.worker``), one Keras
backend per process, and knows nothing of the sweep or the line protocol.

What one configuration measures:

* Synthetic data, created once on the device: ``x ~ N(0, 1)`` of shape (batch, h, w, c) and
  integer class labels (or zero targets, MSE loss, for dense-prediction outputs).
* The compiled step is Keras' own ``train_step`` / ``predict_step``, compiled the way Keras'
  ``fit``/``predict`` compile it, minus the data iterator and callbacks (per backend:
  ``kbench.backends``): TensorFlow ``tf.function(step, jit_compile=jit)`` (jit = XLA; off is
  still a graph function); JAX ``jax.jit(step, donate_argnums=0)`` over the stateless state
  tuple (off = eager JAX); torch eager (jit on torch is refused by the sweep as ``skipped``).
  A training step is forward + loss + backward + SGD(momentum=0.9) update (+ loss scaling
  under ``mixed_float16``, which Keras adds itself); inference is ``predict_step``.
* ``compile_s``: wall time of the first call (tracing + compilation + one step).
* ``warmup`` untimed steps, then ``iters`` timed steps, the device synchronised after each one
  (TF: ``.numpy()`` of the step's outputs; JAX: ``block_until_ready`` on outputs and state;
  torch: ``cuda.synchronize`` on GPU, nothing on CPU where eager ops are synchronous).
  One ``perf_counter`` read per step: step i's time is the gap between consecutive reads, so
  the latencies add up exactly to the loop's wall time and
  ``samples_per_s = batch * iters / wall``.
* ``latency_ms_p50/p90/p99/std/mean/min`` over the per-step times; ``cv`` = std / mean.

``minimal_loop`` is the smallest possible loop over the same compiled step (no per-step
timestamps); ``overhead_check`` interleaves both and reports the ratio (the harness-overhead
check, ``kbench overhead --model resnet18 --input-size 64 --batch-size 8``).

A configuration is a dict: ``request`` (``kbench.registry.ModelRequest.to_payload()``),
``batch_size``, ``mode``, ``precision``, ``jit``, ``warmup``, ``iters`` and optionally
``n_devices`` (> 1: data parallelism, ``kbench.backends.DataParallel``; ``batch_size`` is then
the global batch, split over the devices, and the split is checked before the first step).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable

from kbench import backends
from kbench.layer_walk import count_params

MODES = ("infer", "train")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


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
    """Throughput and latency statistics from per-step times (seconds)."""
    import numpy as np

    t = np.asarray(step_times_s, dtype=float)
    if t.size == 0 or not np.all(t > 0):
        raise ValueError("need at least one positive step time")
    ms = t * 1000.0
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if t.size > 1 else 0.0
    return {
        "samples_per_s": batch_size * t.size / float(t.sum()),
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p90": float(np.percentile(ms, 90)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
        "latency_ms_std": std,
        "latency_ms_mean": mean,
        "latency_ms_min": float(ms.min()),
        "cv": std / mean if mean > 0 else math.nan,
    }


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
    ``parallel`` (``kbench.backends.DataParallel``): the batch split over its devices, checked."""
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


def prepare(cfg: dict):
    """Build the model for ``cfg`` under its precision policy; return (model, step, sync)."""
    import keras

    from kbench.registry import ModelRequest

    try:
        keras.utils.clear_session(free_memory=True)
    except TypeError:
        keras.utils.clear_session()
    n_devices = int(cfg.get("n_devices", 1))
    # Data parallelism: the model is built and compiled inside the strategy's scope.
    parallel = backends.active().data_parallel(n_devices) if n_devices > 1 else None
    with parallel.scope() if parallel else contextlib.nullcontext():
        # After clear_session, which resets the global dtype policy along with the rest of Keras' state.
        keras.config.set_dtype_policy(cfg["precision"])
        try:
            model = ModelRequest.from_payload(cfg["request"]).build()
        finally:
            keras.config.set_dtype_policy("float32")
        check_precision(model, cfg["precision"])
        x, y, loss = make_data(model, cfg["batch_size"], cfg["mode"])
        step, sync = build_step(model, cfg["mode"], bool(cfg["jit"]), x, y, loss, parallel)
    return model, step, sync


def measure(cfg: dict, device: dict | None = None, before_build: Callable[[dict], None] | None = None) -> dict:
    """Run one configuration; return the result record (status ok/oom/error + numbers).

    ``before_build(cfg)`` runs first inside the same error handling (the worker's fault hook).
    """
    backend = backends.active()
    device = device or backend.detect()
    base = {"device": device["device"], "device_kind": device["device_kind"], "n_iters": cfg["iters"],
            "warmup": cfg["warmup"]}
    model = None
    try:
        if before_build is not None:
            before_build(cfg)
        model, step, sync = prepare(cfg)
        params = count_params(model)["params_trainable"]
        backend.peak_memory_reset(device["device"])
        started = time.perf_counter()
        sync(step())
        compile_s = time.perf_counter() - started
        for _ in range(cfg["warmup"]):
            sync(step())
        times = timed_loop(step, sync, cfg["iters"])
        peak, source = backend.peak_memory_mb(device["device"])
        return {**base, "status": "ok", "error": "", **step_stats(times, cfg["batch_size"]),
                "compile_s": compile_s, "peak_mem_mb": peak, "peak_mem_source": source,
                "params_trainable": params}
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


def overhead_check(cfg: dict, repeats: int = 7) -> dict:
    """Interleave the sweep's ``timed_loop`` and ``minimal_loop`` over one compiled step.

    Returns both medians (samples/s), ``ratio`` = median of the per-repeat harness/minimal
    ratios and ``ratio_of_medians``; the order alternates every repeat so neither loop always
    runs first on a warming or throttling machine.
    """
    import statistics

    _, step, sync = prepare(cfg)
    for _ in range(cfg["warmup"] + 1):
        sync(step())
    harness, minimal = [], []
    for r in range(repeats):
        order = ("harness", "minimal") if r % 2 == 0 else ("minimal", "harness")
        for which in order:
            if which == "harness":
                harness.append(step_stats(timed_loop(step, sync, cfg["iters"]), cfg["batch_size"])["samples_per_s"])
            else:
                minimal.append(minimal_loop(step, sync, cfg["iters"], cfg["batch_size"]))
    h, m = statistics.median(harness), statistics.median(minimal)
    # Each repeat runs both loops back to back, so the pair shares the machine's state; the
    # median of the per-pair ratios cancels slow drifts that the ratio of medians would not.
    paired = statistics.median(a / b for a, b in zip(harness, minimal))
    # The loops' own cost, free of the step's noise: both loops over a no-op step.
    n = 200_000
    noop_harness = sum(timed_loop(_noop, _noop1, n)) / n
    noop_minimal = 1.0 / minimal_loop(_noop, _noop1, n, 1)
    extra_s = max(0.0, noop_harness - noop_minimal)
    step_s = cfg["batch_size"] / m
    request = cfg["request"]
    return {"model": request["model"], "input_shape": request["input_shape"], "batch_size": cfg["batch_size"],
            "mode": cfg["mode"], "backend": backends.active().name, "jit": bool(cfg["jit"]), "iters": cfg["iters"],
            "repeats": repeats, "harness_samples_per_s": h, "minimal_samples_per_s": m, "ratio": paired,
            "ratio_of_medians": h / m, "loop_overhead_us_per_step": extra_s * 1e6,
            "loop_overhead_fraction": extra_s / step_s,
            "harness_all": harness, "minimal_all": minimal}
