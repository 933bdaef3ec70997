"""The in-subprocess measurement worker: build, compiled step, warm-up, timed loop, stats.

The sweep (``kbench.sweep``) starts ``python -m kbench.timing worker`` once per model and
backend (``KERAS_BACKEND`` set in its environment) and talks to it over pipes, one JSON object
per line: the worker announces ``READY`` with its device, then for every configuration it reads
one line from stdin, answers ``START`` when it begins and ``RESULT {...}`` when done. Anything
libraries print goes to stderr (the protocol has a private copy of the original stdout).

What one configuration measures:

* Synthetic data, created once on the device: ``x ~ N(0, 1)`` of shape (batch, h, w, c) and
  integer class labels (or zero targets, MSE loss, for dense-prediction outputs).
* The compiled step is Keras' own ``train_step`` / ``predict_step``, compiled the way Keras'
  ``fit``/``predict`` compile it, minus the data iterator and callbacks:
  TensorFlow ``tf.function(step, jit_compile=jit)`` (jit = XLA; off is still a graph function);
  JAX ``jax.jit(step, donate_argnums=0)`` over the stateless state tuple (off = eager JAX);
  torch eager (``jit_compile`` on torch is refused by the sweep as ``skipped``).
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
check; ``python -m kbench.timing overhead --model resnet18 --input-size 64 --batch-size 8``).

Testing hook: ``KBENCH_FAULT_INJECT="model:batch:mode=kind[;...]"`` makes the worker fail the
matching configuration on purpose after it has started it; ``kind`` is ``oom`` (a simulated
out-of-memory exception), ``error`` (a RuntimeError), ``crash`` (the process exits at once,
as a segfault would) or ``hang`` (sleeps forever, for the sweep's timeout). ``*`` matches
any batch or mode. It exists for the tests; never set it in a real run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Callable

FAULT_ENV = "KBENCH_FAULT_INJECT"
MODES = ("infer", "train")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BACKENDS = ("tensorflow", "jax", "torch")


# ----------------------------------------------------------------------------- pure helpers

def parse_faults(text: str | None) -> list[tuple[str, str, str, str]]:
    """``"lenet5:2:infer=oom;*:*:train=hang"`` -> [(model, batch, mode, kind), ...]."""
    faults = []
    for item in (text or "").replace(",", ";").split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, kind = item.partition("=")
        parts = key.split(":")
        if len(parts) != 3 or kind not in ("oom", "error", "crash", "hang"):
            raise ValueError(f"{FAULT_ENV} entry {item!r} must look like model:batch:mode=oom|error|crash|hang")
        faults.append((parts[0], parts[1], parts[2], kind))
    return faults


def fault_for(cfg: dict, faults) -> str | None:
    for model, batch, mode, kind in faults:
        if model in ("*", cfg["model"]) and batch in ("*", str(cfg["batch_size"])) and mode in ("*", cfg["mode"]):
            return kind
    return None


class SimulatedOOM(MemoryError):
    pass


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

def _backend() -> str:
    import keras

    return keras.backend.backend()


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


def build_step(model, mode: str, jit: bool, x, y=None, loss=None):
    """(step, sync): ``step()`` runs one compiled step, ``sync(out)`` waits for the device."""
    import keras

    backend = _backend()
    if mode == "train":
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss=loss,
                      jit_compile=jit if backend != "torch" else False)
        data = (x, y)
        if hasattr(model, "_symbolic_build"):  # what fit()/train_on_batch() do before the first step
            model._symbolic_build(data_batch=data)
        elif not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    else:
        data = (x,)

    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(model.train_step if mode == "train" else model.predict_step,
                         jit_compile=bool(jit), reduce_retracing=True)
        leaves = keras.tree.flatten

        def step():
            return fn(data)

        def sync(out):
            for leaf in leaves(out):
                leaf.numpy()
        return step, sync

    if backend == "jax":
        import jax

        if mode == "train":
            state = [(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in model.optimizer.variables],
                [v.value for v in model.metrics_variables],
            )]
            fn = jax.jit(model.train_step, donate_argnums=0) if jit else model.train_step

            def step():
                logs, state[0] = fn(state[0], data)
                return logs, state[0]
        else:
            pstate = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])

            def predict(s, d):
                return model.predict_step(s, d)[0]
            fn = jax.jit(predict) if jit else predict

            def step():
                return fn(pstate, data)
        return step, jax.block_until_ready

    if backend == "torch":
        import torch

        cuda = torch.cuda.is_available()

        if mode == "train":
            def step():
                return model.train_step(data)
        else:
            def step():
                with torch.no_grad():
                    return model.predict_step(data)

        def sync(out):
            if cuda:
                torch.cuda.synchronize()
        return step, sync
    raise ValueError(f"unsupported backend {backend!r}")


def count_trainable(model) -> int:
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


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

    from kbench import registry

    try:
        keras.utils.clear_session(free_memory=True)
    except TypeError:
        keras.utils.clear_session()
    # After clear_session, which resets the global dtype policy along with the rest of Keras' state.
    keras.config.set_dtype_policy(cfg["precision"])
    try:
        model = registry.build(cfg["model"], input_shape=tuple(cfg["input_shape"]),
                               num_classes=cfg.get("num_classes"), **(cfg.get("variant") or {}))
    finally:
        keras.config.set_dtype_policy("float32")
    check_precision(model, cfg["precision"])
    x, y, loss = make_data(model, cfg["batch_size"], cfg["mode"])
    step, sync = build_step(model, cfg["mode"], bool(cfg["jit"]), x, y, loss)
    return model, step, sync


def measure(cfg: dict, device: dict | None = None, faults=()) -> dict:
    """Run one configuration; return the result record (status ok/oom/error + numbers)."""
    from kbench import devices

    backend = _backend()
    device = device or devices.detect(backend)
    base = {"device": device["device"], "device_kind": device["device_kind"], "n_iters": cfg["iters"],
            "warmup": cfg["warmup"]}
    model = None
    try:
        kind = fault_for(cfg, faults)
        if kind == "crash":
            sys.stderr.write("kbench: simulated crash (KBENCH_FAULT_INJECT)\n")
            sys.stderr.flush()
            os._exit(134)
        if kind == "hang":
            while True:
                time.sleep(3600)
        if kind == "oom":
            raise SimulatedOOM("simulated out of memory (KBENCH_FAULT_INJECT)")
        if kind == "error":
            raise RuntimeError("simulated error (KBENCH_FAULT_INJECT)")
        model, step, sync = prepare(cfg)
        params = count_trainable(model)
        devices.peak_memory_reset(backend, device["device"])
        started = time.perf_counter()
        sync(step())
        compile_s = time.perf_counter() - started
        for _ in range(cfg["warmup"]):
            sync(step())
        times = timed_loop(step, sync, cfg["iters"])
        peak, source = devices.peak_memory_mb(backend, device["device"])
        return {**base, "status": "ok", "error": "", **step_stats(times, cfg["batch_size"]),
                "compile_s": compile_s, "peak_mem_mb": peak, "peak_mem_source": source,
                "params_trainable": params}
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
    return {"model": cfg["model"], "input_shape": cfg["input_shape"], "batch_size": cfg["batch_size"],
            "mode": cfg["mode"], "backend": _backend(), "jit": bool(cfg["jit"]), "iters": cfg["iters"],
            "repeats": repeats, "harness_samples_per_s": h, "minimal_samples_per_s": m, "ratio": paired,
            "ratio_of_medians": h / m, "loop_overhead_us_per_step": extra_s * 1e6,
            "loop_overhead_fraction": extra_s / step_s,
            "harness_all": harness, "minimal_all": minimal}


# ----------------------------------------------------------------------------- subprocess entry points

def _protocol_stream():
    """Keep a private copy of stdout for the protocol; route fd 1 to stderr for everyone else."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    return proto


def _send(proto, tag: str, payload: dict):
    proto.write(f"{tag} {json.dumps(payload, default=float)}\n")
    proto.flush()


def worker_main() -> int:
    proto = _protocol_stream()
    faults = parse_faults(os.environ.get(FAULT_ENV))
    from kbench._quiet import quiet_import

    quiet_import("keras")
    from kbench import devices

    backend = _backend()
    device = devices.detect(backend)
    fresh = devices.fresh_worker_per_config(backend, device["device"])
    _send(proto, "READY", {"backend": backend, **device, "fresh_worker_per_config": fresh})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cfg = json.loads(line)
        _send(proto, "START", {"key": cfg.get("key")})
        result = measure(cfg, device, faults)
        if fresh and result.get("peak_mem_source") == "device_process_peak":
            result["peak_mem_source"] = "device"  # this process measures only this configuration
        result["key"] = cfg.get("key")
        _send(proto, "RESULT", result)
    return 0


def profile_main() -> int:
    """Read {model, input_shape, num_classes, variant} lines; answer one JSON profile per line."""
    proto = _protocol_stream()
    from kbench.profiling import profile

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            rec = profile(req["model"], input_shape=tuple(req["input_shape"]), num_classes=req.get("num_classes"),
                          **(req.get("variant") or {}))
            out = {"status": "ok", **{k: rec.get(k) for k in ("params_trainable", "macs", "flops_tf")}}
        except Exception as exc:  # noqa: BLE001
            out = {"status": "error", "error": one_line(exc)}
        _send(proto, "PROFILE", out)
    return 0


def overhead_main(argv) -> int:
    from kbench.commands._common import parse_input_size, parse_set
    from kbench import registry

    p = argparse.ArgumentParser(prog="python -m kbench.timing overhead",
                                description="harness loop vs minimal loop over the same compiled step")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--input-size", default="64")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--mode", choices=MODES, default="infer")
    p.add_argument("--precision", choices=PRECISIONS, default="float32")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    a = p.parse_args(argv)
    from kbench._quiet import quiet_import

    quiet_import("keras")
    spec = registry.get_spec(a.model)
    shape = registry.normalize_input_shape(spec, parse_input_size(a.input_size))
    backend = _backend()
    from kbench.sweep import default_jit

    jit = a.jit if a.jit is not None else default_jit(backend)
    cfg = {"model": a.model, "input_shape": list(shape), "variant": parse_set(a.set), "batch_size": a.batch_size,
           "mode": a.mode, "precision": a.precision, "jit": jit, "warmup": a.warmup, "iters": a.iters}
    result = overhead_check(cfg, repeats=a.repeats)
    print(json.dumps(result))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = argv[0] if argv else ""
    if command == "worker":
        return worker_main()
    if command == "profile":
        return profile_main()
    if command == "overhead":
        return overhead_main(argv[1:])
    print("usage: python -m kbench.timing worker|profile|overhead [...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
