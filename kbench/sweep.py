"""Throughput sweeps: models x batch sizes x modes x precisions x jit x backends -> CSV rows.

Orchestration only; the measuring happens in ``kbench.timing`` worker subprocesses.

* **Isolation.** Each (model, backend) runs in its own ``python -m kbench.timing worker``
  subprocess with ``KERAS_BACKEND`` set; the parent sends one configuration at a time and
  reads back one JSON result. A crash, hang or leak takes down only that worker: the current
  configuration becomes an ``error`` (or ``timeout``) row and the remaining configurations of
  that model continue in a fresh worker. Where the device's peak memory cannot be reset in a
  process (JAX on a GPU) or ``KBENCH_FRESH_WORKER=1``, every configuration gets a fresh worker,
  so that ``peak_mem_mb`` is its own (``kbench.devices.fresh_worker_per_config``).
* **Order.** model, backend, precision, jit, mode, then batch sizes ascending, so that after an
  ``oom`` at batch B every larger batch of the same (model, input, variant, backend, precision,
  jit, mode) is written as ``skipped`` without being tried.
* **No lost data.** Every finished configuration is appended to the CSV at once (one atomic
  write + fsync per row, ``kbench.csvio.RowWriter``). ``--resume`` reads the file, keys rows by
  (model, input_h, input_w, variant, batch_size, mode, backend, precision, jit) and skips keys
  already written, whatever their status, so a key never appears twice in a file. Failed
  configurations (``error``, ``timeout``, ``oom``) are not retried: delete those rows, or write
  a new file, to try again.
* **Time budget.** ``--time-budget`` bounds the whole sweep: when it runs out the configuration
  in flight is stopped and it and all remaining configurations are simply *not run* (no row), so
  that ``--resume`` with a new budget picks them up; the end-of-sweep message counts them.
* **Timeout.** ``--timeout`` bounds one configuration (build + compile + warm-up + timed
  steps), counted from the worker's START message; a worker's start-up (imports) has its own
  allowance of ``max(120 s, timeout)``.
* **FLOPs.** ``flops_tf``/``macs`` come from the TensorFlow profile (``kbench.profile``) of the
  model at the sweep's input, computed in a separate TensorFlow subprocess and cached as JSON
  under ``--profile-cache`` (default ``results/.profile-cache/``) keyed by model, input,
  variant, classes and kbench version. Without TensorFlow and without a cache entry the FLOPs
  columns stay empty (``achieved_tflops``/``mfu`` too); that is not an error.
* ``achieved_tflops = flops_tf x multiplier x samples_per_s / 1e12`` with multiplier 1 for
  inference and 3 for training (forward + ~2x forward for the backward pass);
  ``mfu = achieved_tflops / peak_tflops`` (``kbench.devices``; empty on CPU).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from kbench import devices, env
from kbench.csvio import RowWriter, read_header, read_rows, write_text_atomic
from kbench.errors import UsageError
from kbench.timing import BACKENDS, MODES, PRECISIONS

REQUIRED_COLUMNS = (
    "run_id", "timestamp", "model", "family", "input_h", "input_w", "batch_size", "mode", "backend",
    "precision", "jit", "status", "error", "samples_per_s", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
    "latency_ms_std", "compile_s", "peak_mem_mb", "params_trainable", "macs", "flops_tf", "achieved_tflops", "mfu",
    "device", "device_kind", "host", "kbench_version", "tf_version", "keras_version", "backend_version", "git_commit",
)
EXTRA_COLUMNS = (
    "input_c", "variant", "num_classes", "n_iters", "warmup", "cv", "latency_ms_mean", "latency_ms_min",
    "peak_tflops", "flops_multiplier", "peak_mem_source", "python_version",
)
SWEEP_COLUMNS = REQUIRED_COLUMNS + EXTRA_COLUMNS
KEY_COLUMNS = ("model", "input_h", "input_w", "variant", "batch_size", "mode", "backend", "precision", "jit")
STATUSES = ("ok", "oom", "error", "timeout", "skipped")
DONE_STATUSES = frozenset(STATUSES)  # every written row counts: a key never repeats
STARTUP_TIMEOUT_S = 120.0
TORCH_JIT_REASON = ("jit_compile on the torch backend (torch.compile under Keras) recompiles and is not measured; "
                    "run torch with --no-jit")


@dataclasses.dataclass
class Config:
    model: str
    family: str
    input_shape: tuple[int, int, int]
    variant: dict
    num_classes: int | None
    batch_size: int
    mode: str
    backend: str
    precision: str
    jit: bool
    warmup: int
    iters: int

    @property
    def variant_text(self) -> str:
        return json.dumps(self.variant, sort_keys=True) if self.variant else ""

    @property
    def key(self) -> tuple[str, ...]:
        h, w, _ = self.input_shape
        return (self.model, str(h), str(w), self.variant_text, str(self.batch_size), self.mode, self.backend,
                self.precision, "true" if self.jit else "false")

    @property
    def group(self) -> tuple[str, ...]:
        return group_key(self.key)

    def worker_payload(self) -> dict:
        return {"key": "|".join(self.key), "model": self.model, "input_shape": list(self.input_shape),
                "variant": self.variant, "num_classes": self.num_classes, "batch_size": self.batch_size,
                "mode": self.mode, "precision": self.precision, "jit": self.jit, "warmup": self.warmup,
                "iters": self.iters}

    def describe(self) -> str:
        h, w, _ = self.input_shape
        return (f"{self.model} {h}x{w} b{self.batch_size} {self.mode} {self.backend} {self.precision}"
                f"{' jit' if self.jit else ''}")


@dataclasses.dataclass
class SweepSpec:
    models: list[str]
    batch_sizes: list[int]
    modes: list[str]
    precisions: list[str]
    backends: list[str]
    jit: str = "auto"  # auto | on | off | both
    input_size: tuple[int, int] | None = None
    variant: dict = dataclasses.field(default_factory=dict)
    num_classes: int | None = None
    warmup: int = 10
    iters: int = 50
    timeout_s: float = 600.0
    time_budget_s: float | None = None
    peak_tflops: float | None = None
    out: str = "results/sweep.csv"
    resume: bool = False
    profile_cache: str | None = "results/.profile-cache"
    progress: bool | None = None  # None: only when stderr is a terminal


def default_jit(backend: str) -> bool:
    """Keras' own default (``jit_compile="auto"``): jax.jit on JAX; XLA on TensorFlow only when
    the host has a GPU (Keras disables XLA on CPU-only machines: XLA's CPU convolutions are
    about 10x slower than TensorFlow's oneDNN kernels here); eager on torch."""
    if backend == "torch":
        return False
    if backend == "tensorflow":
        return devices.host_has_gpu()
    return True


def jit_values(jit: str, backend: str) -> list[bool]:
    return {"auto": [default_jit(backend)], "on": [True], "off": [False], "both": [True, False]}[jit]


def backend_available(backend: str) -> bool:
    return importlib.util.find_spec({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]) is not None


def validate(spec: SweepSpec) -> None:
    """Every check that can be made before measuring anything (UsageError -> exit 2)."""
    from kbench import registry

    for what, values, allowed in (("--modes", spec.modes, MODES), ("--precision", spec.precisions, PRECISIONS),
                                  ("--backend", spec.backends, BACKENDS)):
        if not values:
            raise UsageError(f"{what} needs at least one value; allowed: {', '.join(allowed)}")
        for v in values:
            if v not in allowed:
                raise UsageError(f"{what}: unknown value {v!r}; allowed: {', '.join(allowed)}")
    if not spec.batch_sizes or any((not isinstance(b, int)) or b <= 0 for b in spec.batch_sizes):
        raise UsageError(f"batch sizes must be positive integers, got {spec.batch_sizes!r}")
    if spec.warmup < 0 or spec.iters <= 0:
        raise UsageError(f"--warmup must be >= 0 and --iters > 0 (got {spec.warmup}, {spec.iters})")
    if spec.timeout_s <= 0 or (spec.time_budget_s is not None and spec.time_budget_s <= 0):
        raise UsageError("--timeout and --time-budget must be positive seconds")
    if spec.peak_tflops is not None and spec.peak_tflops <= 0:
        raise UsageError(f"--peak-tflops must be positive, got {spec.peak_tflops}")
    if spec.jit not in ("auto", "on", "off", "both"):
        raise UsageError(f"jit must be auto, on, off or both, got {spec.jit!r}")
    for b in spec.backends:
        if not backend_available(b):
            raise UsageError(f"backend {b!r} is not installed in this environment (pip install kbench[{b if b != 'tensorflow' else 'cpu'}])")
    if not spec.models:
        raise UsageError("no models selected")
    for name in spec.models:
        model_spec = registry.get_spec(name)
        registry.normalize_input_shape(model_spec, spec.input_size)
        allowed = registry.builder_kwargs(model_spec) - {"input_shape", "num_classes"}
        unknown = sorted(set(spec.variant) - allowed)
        if unknown:
            raise UsageError(f"unknown option {unknown[0]!r} for {name}; allowed: {', '.join(sorted(allowed))}")


def plan(spec: SweepSpec) -> list[Config]:
    from kbench import registry

    configs = []
    for name in spec.models:
        model_spec = registry.get_spec(name)
        shape = registry.normalize_input_shape(model_spec, spec.input_size)
        for backend in spec.backends:
            for precision in spec.precisions:
                for jit in jit_values(spec.jit, backend):
                    for mode in spec.modes:
                        for batch in sorted(set(spec.batch_sizes)):
                            configs.append(Config(name, model_spec.family, tuple(shape), dict(spec.variant),
                                                  spec.num_classes, batch, mode, backend, precision, jit,
                                                  spec.warmup, spec.iters))
    return configs


def read_existing(path: Path) -> list[dict[str, str]]:
    """Rows of an existing sweep CSV for --resume; a malformed file is a UsageError."""
    header = read_header(path)
    if header is None:
        return []
    if header != list(SWEEP_COLUMNS):
        missing = [c for c in SWEEP_COLUMNS if c not in header]
        detail = f"missing columns {', '.join(missing[:5])}" if missing else "its columns are in a different order"
        raise UsageError(f"cannot resume {str(path)!r}: not a kbench sweep CSV of this version ({detail})")
    rows = read_rows(path)
    for number, row in enumerate(rows, start=2):
        if row["status"] not in STATUSES:
            raise UsageError(f"malformed sweep CSV {str(path)!r}: line {number} has status {row['status']!r}")
        if not row["batch_size"].isdigit():
            raise UsageError(f"malformed sweep CSV {str(path)!r}: line {number} has batch_size {row['batch_size']!r}")
    return rows


def row_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in KEY_COLUMNS)


_BATCH_INDEX = KEY_COLUMNS.index("batch_size")


def group_key(key: tuple[str, ...]) -> tuple[str, ...]:
    """The key without the batch size: the unit of the OOM -> skip-larger rule."""
    return key[:_BATCH_INDEX] + key[_BATCH_INDEX + 1:]


# ----------------------------------------------------------------------------- FLOPs (TF profile)

def _profile_cache_path(cache_dir: Path, cfg: Config) -> Path:
    from kbench import __version__

    ident = json.dumps([cfg.model, list(cfg.input_shape), cfg.variant, cfg.num_classes, __version__], sort_keys=True)
    digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
    h, w, c = cfg.input_shape
    return cache_dir / f"{cfg.model}-{h}x{w}x{c}-{digest}.json"


class Profiler:
    """TF-profile lookups: the JSON cache, else one long-lived TensorFlow subprocess."""

    def __init__(self, cache_dir: str | None):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.proc: Worker | None = None
        self.available = backend_available("tensorflow")
        self.memo: dict[tuple, dict] = {}

    def get(self, cfg: Config, deadline_s: float) -> dict:
        ident = (cfg.model, cfg.input_shape, cfg.variant_text, cfg.num_classes)
        if ident in self.memo:
            return self.memo[ident]
        path = _profile_cache_path(self.cache_dir, cfg) if self.cache_dir else None
        result: dict = {}
        if path and path.exists():
            try:
                result = json.loads(path.read_text())
            except (OSError, ValueError):
                result = {}
        if not result and self.available and deadline_s > 0:
            result = self._run(cfg, deadline_s)
            if result and path:
                write_text_atomic(path, json.dumps(result))
        self.memo[ident] = result
        return result

    def _run(self, cfg: Config, deadline_s: float) -> dict:
        try:
            if self.proc is None:
                self.proc = Worker("tensorflow", command="profile")
            self.proc.send({"model": cfg.model, "input_shape": list(cfg.input_shape), "variant": cfg.variant,
                            "num_classes": cfg.num_classes})
            tag, payload = self.proc.receive(deadline_s)
        except OSError:
            tag, payload = None, {}
        if tag != "PROFILE":
            self.close()
            return {}
        if payload.get("status") != "ok":
            return {}
        return {k: payload.get(k) for k in ("params_trainable", "macs", "flops_tf")}

    def close(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


# ----------------------------------------------------------------------------- worker process

class Worker:
    """A ``python -m kbench.timing <command>`` subprocess speaking the line protocol."""

    def __init__(self, backend: str, command: str = "worker"):
        child_env = dict(os.environ)
        child_env["KERAS_BACKEND"] = backend
        child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        child_env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: peak memory means something
        child_env["PYTHONUNBUFFERED"] = "1"
        self.stderr_file = tempfile.TemporaryFile(mode="w+")
        self.killed_by_us = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kbench.timing", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr_file, env=child_env, text=True, bufsize=1, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, payload: dict):
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout_s: float) -> tuple[str | None, dict]:
        """Next protocol message; (None, {}) on timeout, ("EOF", {}) when the worker died."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, {}
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return None, {}
            if line is None:
                return "EOF", {}
            tag, _, rest = line.strip().partition(" ")
            if tag in ("READY", "START", "RESULT", "PROFILE"):
                try:
                    return tag, json.loads(rest or "{}")
                except ValueError:
                    continue
            # anything else on the protocol stream is ignored

    def death_reason(self) -> tuple[str, str]:
        """(status, message) for a worker whose stream ended unexpectedly."""
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        tail = ""
        try:
            self.stderr_file.seek(0)
            lines = [ln.strip() for ln in self.stderr_file.read().splitlines() if ln.strip()]
            tail = lines[-1][:300] if lines else ""
        except OSError:
            pass
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            if -rc == signal.SIGKILL and not self.killed_by_us:
                return "oom", f"worker killed by SIGKILL (likely the kernel's out-of-memory killer){': ' + tail if tail else ''}"
            return "error", f"worker crashed with signal {name}{': ' + tail if tail else ''}"
        return "error", f"worker exited with code {rc}{': ' + tail if tail else ''}"

    def kill(self):
        self.killed_by_us = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.stderr_file.close()


# ----------------------------------------------------------------------------- rows

def _num(value, digits: int = 6):
    if value is None or value == "":
        return ""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if value != value:  # NaN
        return ""
    return float(f"{value:.{digits}g}")


class _EnvCache:
    def __init__(self):
        self.cache: dict[tuple, dict] = {}
        self.device: dict[str, dict] = {}

    def get(self, backend: str) -> dict:
        dev = self.device.get(backend)
        k = (backend, dev["device"], dev["device_kind"]) if dev else (backend, "", "")
        if k not in self.cache:
            environment = env.environment(k[1] or "", k[2] or None, backend)
            if not dev:
                environment["device"] = environment["device_kind"] = ""
            self.cache[k] = environment
        return self.cache[k]


def make_row(cfg: Config, result: dict, profile: dict, run_id: str, environment: dict,
             peak_override: float | None) -> dict[str, Any]:
    h, w, c = cfg.input_shape
    status = result.get("status", "error")
    device, kind = result.get("device") or environment.get("device", ""), result.get("device_kind") or environment.get("device_kind", "")
    mult = devices.flops_multiplier(cfg.mode)
    flops = profile.get("flops_tf")
    sps = result.get("samples_per_s") if status == "ok" else None
    achieved = flops * mult * sps / 1e12 if (flops and sps) else None
    peak = devices.peak_tflops(device, kind, cfg.precision, peak_override) if device else peak_override
    row = {
        "run_id": run_id, "timestamp": env.timestamp(), "model": cfg.model, "family": cfg.family,
        "input_h": h, "input_w": w, "batch_size": cfg.batch_size, "mode": cfg.mode, "backend": cfg.backend,
        "precision": cfg.precision, "jit": "true" if cfg.jit else "false", "status": status,
        "error": result.get("error", ""),
        "samples_per_s": _num(sps),
        "latency_ms_p50": _num(result.get("latency_ms_p50")), "latency_ms_p90": _num(result.get("latency_ms_p90")),
        "latency_ms_p99": _num(result.get("latency_ms_p99")), "latency_ms_std": _num(result.get("latency_ms_std")),
        "compile_s": _num(result.get("compile_s"), 4), "peak_mem_mb": _num(result.get("peak_mem_mb"), 6),
        "params_trainable": result.get("params_trainable") or profile.get("params_trainable") or "",
        "macs": profile.get("macs") or "", "flops_tf": flops or "",
        "achieved_tflops": _num(achieved), "mfu": _num(achieved / peak) if (achieved and peak) else "",
        **{k: environment.get(k, "") for k in env.ENV_COLUMNS}, "device": device, "device_kind": kind,
        "input_c": c, "variant": cfg.variant_text, "num_classes": cfg.num_classes or "",
        "n_iters": cfg.iters if status == "ok" else "", "warmup": cfg.warmup if status == "ok" else "",
        "cv": _num(result.get("cv"), 4), "latency_ms_mean": _num(result.get("latency_ms_mean")),
        "latency_ms_min": _num(result.get("latency_ms_min")), "peak_tflops": _num(peak) if peak else "",
        "flops_multiplier": mult, "peak_mem_source": result.get("peak_mem_source", ""),
    }
    return row


# ----------------------------------------------------------------------------- the sweep

@dataclasses.dataclass
class SweepResult:
    path: Path
    rows: list[dict]
    not_run: int
    skipped_existing: int


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("starting", total=total)

    def describe(self, text: str):
        if self.bar:
            self.bar.update(self.task, description=text)

    def advance(self):
        if self.bar:
            self.bar.advance(self.task)

    def close(self):
        if self.bar:
            self.bar.stop()


def run_sweep(spec: SweepSpec, on_row: Callable[[dict], None] | None = None) -> SweepResult:
    validate(spec)
    out = Path(spec.out)
    existing: list[dict] = []
    if out.exists() and out.stat().st_size > 0:
        if not spec.resume:
            raise UsageError(f"{str(out)!r} already exists; pass --resume to continue it or choose another --out")
        existing = read_existing(out)
    configs = plan(spec)
    done = {row_key(r) for r in existing if r["status"] in DONE_STATUSES}
    oom_at: dict[tuple, int] = {}
    for r in existing:
        if r["status"] == "oom":
            g = group_key(row_key(r))
            oom_at[g] = min(oom_at.get(g, 1 << 62), int(r["batch_size"]))
    pending = [c for c in configs if c.key not in done]
    skipped_existing = len(configs) - len(pending)

    writer = RowWriter(out, SWEEP_COLUMNS)  # repairs a torn last line left by a kill
    run_id = env.new_run_id()
    envs = _EnvCache()
    profiler = Profiler(spec.profile_cache)
    started = time.monotonic()
    budget = spec.time_budget_s
    written: list[dict] = []
    show = spec.progress if spec.progress is not None else sys.stderr.isatty()
    progress = _Progress(len(pending), show)

    def remaining() -> float:
        return float("inf") if budget is None else budget - (time.monotonic() - started)

    def emit_row(cfg: Config, result: dict, profile: dict):
        row = make_row(cfg, result, profile, run_id, envs.get(cfg.backend), spec.peak_tflops)
        writer.write(row)
        written.append(row)
        if on_row:
            on_row(row)
        if row["status"] == "oom":
            oom_at[cfg.group] = min(oom_at.get(cfg.group, 1 << 62), cfg.batch_size)
        progress.advance()

    not_run = 0
    groups: dict[tuple[str, str], list[Config]] = {}
    for cfg in pending:
        groups.setdefault((cfg.model, cfg.backend), []).append(cfg)
    try:
        for (model, backend), todo in groups.items():
            if remaining() <= 0:
                not_run += len(todo)
                continue
            profile = profiler.get(todo[0], min(spec.timeout_s, remaining()))
            worker: Worker | None = None
            fresh_per_config = False
            try:
                while todo:
                    cfg = todo[0]
                    if remaining() <= 0:
                        not_run += len(todo)
                        break
                    progress.describe(cfg.describe())
                    if cfg.group in oom_at and cfg.batch_size > oom_at[cfg.group]:
                        emit_row(cfg, {"status": "skipped", "error": f"larger than batch {oom_at[cfg.group]}, which ran out of memory"}, profile)
                        todo.pop(0)
                        continue
                    if cfg.backend == "torch" and cfg.jit:
                        emit_row(cfg, {"status": "skipped", "error": TORCH_JIT_REASON}, profile)
                        todo.pop(0)
                        continue
                    if worker is None:
                        worker = Worker(backend)
                        tag, info = worker.receive(min(max(STARTUP_TIMEOUT_S, spec.timeout_s), remaining()))
                        if tag != "READY":
                            if tag is None:
                                worker.kill()
                                worker = None
                                if remaining() <= 0:
                                    continue  # the budget ran out while starting: not run
                                status, message = "error", "worker did not start in time"
                            else:
                                status, message = worker.death_reason()
                                status = "error"
                            for c in todo:  # a worker that cannot start fails every configuration alike
                                emit_row(c, {"status": status, "error": f"{backend} worker failed to start: {message}"}, profile)
                            todo.clear()
                            if worker is not None:
                                worker.stop()
                            worker = None
                            break
                        envs.device[backend] = {"device": info.get("device", ""), "device_kind": info.get("device_kind", "")}
                        fresh_per_config = bool(info.get("fresh_worker_per_config"))
                    worker.send(cfg.worker_payload())
                    tag, _ = worker.receive(min(60.0, remaining()))
                    if tag == "START":
                        tag, result = worker.receive(min(spec.timeout_s, remaining()))
                    else:
                        result = {}
                    if tag == "RESULT":
                        emit_row(cfg, result, profile)
                        if fresh_per_config:  # see devices.fresh_worker_per_config
                            worker.stop()
                            worker = None
                    elif tag is None:  # timeout (or the budget ran out)
                        worker.kill()
                        worker = None
                        if remaining() <= 0:
                            continue  # not run; --resume retries it
                        emit_row(cfg, {"status": "timeout", "error": f"no result within --timeout {spec.timeout_s:g} s; worker killed"}, profile)
                    else:  # EOF: the worker died during this configuration
                        status, message = worker.death_reason()
                        worker.stop()
                        worker = None
                        emit_row(cfg, {"status": status, "error": message}, profile)
                    todo.pop(0)
            except BaseException:  # Ctrl-C or a bug: do not leave a worker measuring on its own
                if worker is not None:
                    worker.kill()
                    worker = None
                raise
            finally:
                if worker is not None:
                    worker.stop()
    finally:
        progress.close()
        profiler.close()
    return SweepResult(out, written, not_run, skipped_existing)


def summary_rows(rows: Iterable[dict]) -> list[dict]:
    return [{"model": r["model"], "batch": r["batch_size"], "mode": r["mode"], "backend": r["backend"],
             "precision": r["precision"], "jit": r["jit"], "samples/s": r["samples_per_s"],
             "p50_ms": r["latency_ms_p50"], "cv": r["cv"], "status": r["status"]} for r in rows]
