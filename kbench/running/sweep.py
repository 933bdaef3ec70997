"""Throughput sweeps: models x batch sizes x modes x precisions x jit x backends -> CSV rows.

Planning, resume, rows and orchestration; the measuring happens in ``kbench.running.timing`` inside
worker subprocesses (``kbench.running.worker``), and everything backend-specific in ``kbench.running.backends``.

* **Requests.** Each model is resolved once (``registry.resolve``) into a ``ModelRequest``
  when the spec is validated; configurations carry it, and workers build from its payload.
* **Isolation.** Each (model, backend) runs in its own ``python -m kbench.running.worker worker``
  subprocess with ``KERAS_BACKEND`` set; the parent sends one configuration at a time and
  reads back one JSON result. A crash, hang or leak takes down only that worker: the current
  configuration becomes an ``error`` (or ``timeout``) row and the remaining configurations of
  that model continue in a fresh worker. Where the device's peak memory cannot be reset in a
  process (JAX on a GPU) or ``KBENCH_FRESH_WORKER=1``, every configuration gets a fresh worker,
  so that ``peak_mem_mb`` is its own (``Backend.fresh_worker_per_config``).
* **Order.** model, backend, precision, jit, mode, then batch sizes ascending, so that after an
  ``oom`` at batch B every larger batch of the same (model, input, variant, backend, precision,
  jit, mode) is written as ``skipped`` without being tried.
* **No lost data.** Every finished configuration is appended to the CSV at once (one atomic
  write + fsync per row, ``kbench.common.csvio.CsvLog``). ``--resume`` reads the file, keys rows by
  (model, input_h, input_w, variant, batch_size, mode, backend, precision, jit, n_devices,
  num_classes) and skips keys already written, whatever their status, so a key never appears
  twice in a file. With
  ``retry_failed`` (``--retry-failed``) the ``error`` and ``timeout`` rows of earlier runs are
  measured again, each new row replacing the old one (the file is rewritten atomically), so
  there is still one row per key; ``oom`` and ``skipped`` rows stay.
* **Concurrent sweeps on one file.** Each configuration is decided and written under an
  exclusive lock on the CSV (``flock``): the rows are read again, a key someone else wrote
  meanwhile is skipped, and the configuration is measured and appended before the lock is
  released. N sweeps on one file write one header and each key once (and never measure at the
  same time, which would distort each other's numbers).
* **Workers that die.** A worker killed from outside (SIGKILL without the kernel's OOM
  evidence, see ``kbench.running.worker``) is not an ``oom``: the configuration is retried once in a
  fresh worker; a second SIGKILL there is recorded as ``oom``. Workers die with the sweep.
* **Time budget.** ``--time-budget`` bounds the whole sweep: when it runs out the configuration
  in flight is stopped and it and all remaining configurations are simply *not run* (no row), so
  that ``--resume`` with a new budget picks them up; the end-of-sweep message counts them.
* **Timeout.** ``--timeout`` bounds one configuration (build + compile + warm-up + timed
  steps), counted from the worker's START message; a worker's start-up (imports) has its own
  allowance of ``max(120 s, timeout)``.
* **FLOPs.** ``flops_tf``/``macs`` come from the TensorFlow profile (``kbench.profile``) of the
  model at the sweep's input, computed in a separate TensorFlow subprocess and cached as JSON
  under ``--profile-cache`` (default: ``.profile-cache/`` beside ``--out``), keyed on the
  request and on the source of the zoo and of the counting code (``kbench.running.profile_cache``), so
  an edited builder is profiled again. Without TensorFlow and without a cache entry the FLOPs
  columns stay empty (``achieved_tflops``/``mfu`` too); that is not an error.
  ``profile_only`` (``--profile-only``) fills the cache and measures nothing: run it on a
  TensorFlow machine and carry the directory to a machine without TensorFlow.
* **Devices.** ``devices`` (``--devices 1,2,4``) adds ``n_devices`` to the key: ``batch_size``
  is the global batch, split over n devices by the backend's data parallelism
  (``kbench.running.backends.DataParallel``, checked: a configuration that silently runs on one device
  is an ``error`` row); each (model, backend, n) has its own worker, n = 1 first, so that
  ``scaling_efficiency`` (``kbench.results.scaling``) is computed as each row is written. A batch that n
  does not divide is ``skipped``, as is n larger than the devices the worker sees.
* **Shards.** ``shard`` (``--shard K/N``) measures only the K-th of N cost-balanced slices of the
  plan (``kbench.running.shard``); ``kbench merge`` joins the shards' CSVs (``kbench.results.merge``).
* ``achieved_tflops = flops_tf x multiplier x samples_per_s / 1e12`` with multiplier 1 for
  inference and 3 for training (forward + ~2x forward for the backward pass);
  ``mfu = achieved_tflops / peak_tflops`` (``kbench.common.devices``; empty on CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from kbench.common import devices, env
from kbench.results import scaling, schema
from kbench.results.schema import MODES, PRECISIONS, significant
from kbench.running.backends import BACKENDS
from kbench.common.csvio import CsvLog
from kbench.errors import UsageError
from kbench.running.profile_cache import FIELDS as PROFILE_FIELDS
from kbench.running.profile_cache import ProfileCache
from kbench.models.registry import ModelRequest
from kbench.common.validate import check_variant
from kbench.running.worker import PROFILE, READY, RESULT, START, Worker

STARTUP_TIMEOUT_S = 120.0
PROFILE_CACHE_DIRNAME = ".profile-cache"


@dataclasses.dataclass
class Config:
    request: ModelRequest
    batch_size: int
    mode: str
    backend: str
    precision: str
    jit: bool
    warmup: int
    iters: int
    rounds: int = 1
    n_devices: int = 1  # data parallelism: batch_size is the global batch (kbench.running.backends.DataParallel)

    @property
    def model(self) -> str:
        return self.request.name

    @property
    def family(self) -> str:
        return self.request.family

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.request.input_shape

    @property
    def num_classes(self) -> int:
        return self.request.num_classes

    @property
    def variant_text(self) -> str:
        return self.request.variant_text

    def key_fields(self) -> dict[str, object]:
        """The row's key columns (``kbench.results.schema.KEY_COLUMNS``) for this configuration."""
        h, w, _ = self.input_shape
        return {"model": self.model, "input_h": h, "input_w": w, "variant": self.variant_text,
                "batch_size": self.batch_size, "mode": self.mode, "backend": self.backend,
                "precision": self.precision, "jit": "true" if self.jit else "false", "n_devices": self.n_devices,
                "num_classes": "" if self.num_classes is None else self.num_classes}

    @property
    def key(self) -> tuple[str, ...]:
        return schema.row_key(self.key_fields())

    @property
    def group(self) -> tuple[str, ...]:
        return schema.group_key(self.key)

    def worker_payload(self) -> dict:
        return {"key": "|".join(self.key), "request": self.request.to_payload(), "batch_size": self.batch_size,
                "mode": self.mode, "precision": self.precision, "jit": self.jit, "warmup": self.warmup,
                "iters": self.iters, "rounds": self.rounds, "n_devices": self.n_devices}

    def describe(self) -> str:
        h, w, _ = self.input_shape
        return (f"{self.model} {h}x{w} b{self.batch_size} {self.mode} {self.backend} {self.precision}"
                f"{' jit' if self.jit else ''}{f' x{self.n_devices} devices' if self.n_devices > 1 else ''}")

    def skip_reason(self) -> str:
        """Why this configuration is recorded as ``skipped`` without being tried ('' if it runs)."""
        backend = BACKENDS[self.backend]
        if self.jit and not backend.supports_jit:
            return backend.jit_unsupported_reason
        if self.n_devices > 1 and backend.multi_device_unsupported_reason:
            return backend.multi_device_unsupported_reason
        if self.batch_size % self.n_devices:
            return (f"global batch {self.batch_size} is not divisible by {self.n_devices} devices: each needs an "
                    f"equal part (Keras issue #21167 crashes there)")
        return ""


@dataclasses.dataclass
class SweepSpec:
    models: list  # registered names, user selectors (PATH.keras, module:factory) or ModelRequests
    batch_sizes: list[int]
    modes: list[str]
    precisions: list[str]
    backends: list[str]
    jit: str = "auto"  # auto | on | off | both
    input_size: tuple[int, int] | None = None
    variant: dict = dataclasses.field(default_factory=dict)
    num_classes: int | None = None
    warmup: int = 10
    iters: int = 10  # timed steps per round (5 rounds: 50 timed steps, as before rounds existed)
    rounds: int = 5
    timeout_s: float = 600.0
    time_budget_s: float | None = None
    peak_tflops: float | None = None
    out: str = "results/sweep.csv"
    resume: bool = False
    profile_cache: str | None = None  # None: PROFILE_CACHE_DIRNAME beside ``out``
    progress: bool | None = None  # None: only when stderr is a terminal
    profile_only: bool = False  # fill the profile cache, measure nothing
    retry_failed: bool = False  # with resume: measure error/timeout rows again (one row per key)
    shard: tuple[int, int] | None = None  # (K, N): only the K-th of N slices of the plan (kbench.running.shard)
    devices: list[int] = dataclasses.field(default_factory=lambda: [1])  # n_devices values (data parallelism)

    @property
    def profile_cache_dir(self) -> Path:
        """Where profiles are cached: ``profile_cache``, else beside the output file, so that a
        sweep writes only where its user asked for output."""
        return Path(self.profile_cache) if self.profile_cache else Path(self.out).parent / PROFILE_CACHE_DIRNAME


def jit_values(jit: str, backend: str) -> list[bool]:
    return {"auto": [BACKENDS[backend].default_jit()], "on": [True], "off": [False], "both": [True, False]}[jit]


def validate(spec: SweepSpec) -> list[ModelRequest]:
    """Every check that can be made before measuring anything (UsageError -> exit 2); returns
    each model resolved, once, into the request that every configuration of it carries."""
    from kbench.models import registry

    for what, values, allowed in (("--modes", spec.modes, MODES), ("--precision", spec.precisions, PRECISIONS),
                                  ("--backend", spec.backends, BACKENDS)):
        if not values:
            raise UsageError(f"{what} needs at least one value; allowed: {', '.join(allowed)}")
        for v in values:
            if v not in allowed:
                raise UsageError(f"{what}: unknown value {v!r}; allowed: {', '.join(allowed)}")
    if not spec.batch_sizes or any((not isinstance(b, int)) or b <= 0 for b in spec.batch_sizes):
        raise UsageError(f"batch sizes must be positive integers, got {spec.batch_sizes!r}")
    if not spec.devices or any(isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in spec.devices):
        raise UsageError(f"--devices must be positive integers (device counts), got {spec.devices!r}")
    for what, value in (("--warmup", spec.warmup), ("--iters", spec.iters), ("--rounds", spec.rounds)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{what} {value!r} must be an integer")
    if spec.warmup < 0 or spec.iters <= 0 or spec.rounds <= 0:
        raise UsageError(f"--warmup must be >= 0, --iters and --rounds > 0 "
                         f"(got {spec.warmup}, {spec.iters}, {spec.rounds})")
    for what, value in (("--timeout", spec.timeout_s), ("--time-budget", spec.time_budget_s),
                        ("--peak-tflops", spec.peak_tflops)):
        if value is None and what != "--timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            unit = "TFLOP/s" if what == "--peak-tflops" else "seconds"
            raise UsageError(f"{what} {value!r} must be a finite positive number of {unit}")
    if spec.retry_failed and not spec.resume:
        raise UsageError("--retry-failed needs --resume (it re-measures the failed rows of an existing --out)")
    if spec.jit not in ("auto", "on", "off", "both"):
        raise UsageError(f"jit must be auto, on, off or both, got {spec.jit!r}")
    if spec.shard is not None:
        from kbench.running.shard import check_shard

        check_shard(spec.shard)
    if spec.profile_only and not BACKENDS["tensorflow"].available():
        raise UsageError(f"--profile-only needs TensorFlow, which profiles the models "
                         f"({BACKENDS['tensorflow'].install_hint()})")
    for b in spec.backends:
        if not BACKENDS[b].available():
            raise UsageError(f"backend {b!r} is not installed in this environment ({BACKENDS[b].install_hint()})")
    if not spec.models:
        raise UsageError("no models selected")
    if spec.profile_cache_dir.exists() and not spec.profile_cache_dir.is_dir():
        raise UsageError(f"--profile-cache {str(spec.profile_cache_dir)!r} is not a directory")
    if not spec.profile_only:
        from kbench.common import outputs

        out = Path(spec.out)
        empty = out.is_file() and out.stat().st_size == 0
        outputs.check_output(spec.out, "--out", append=spec.resume or empty,
                             hint="pass --resume to continue it or choose another --out")
    # A model may come resolved already (``kbench.run_sweep`` with keras.Model objects).
    requests = [name if isinstance(name, ModelRequest) else
                registry.resolve(name, spec.input_size, spec.num_classes, spec.variant) for name in spec.models]
    for request in requests:
        check_variant(request)
    return requests


def plan(spec: SweepSpec, requests: Iterable[ModelRequest]) -> list[Config]:
    """Every configuration, in the sweep's order (see the module docstring)."""
    configs = []
    for request in requests:
        for backend in spec.backends:
            for n_devices in sorted(set(spec.devices)):  # 1 first: the baseline of scaling_efficiency
                for precision in spec.precisions:
                    for jit in jit_values(spec.jit, backend):
                        for mode in spec.modes:
                            for batch in sorted(set(spec.batch_sizes)):
                                configs.append(Config(request, batch, mode, backend, precision, jit,
                                                      spec.warmup, spec.iters, spec.rounds, n_devices))
    return configs


# ----------------------------------------------------------------------------- FLOPs (TF profile)

class Profiler:
    """TF-profile lookups: the cache (``kbench.running.profile_cache``), else one long-lived TensorFlow
    worker (``python -m kbench.running.worker profile``) whose answers are stored in the cache."""

    def __init__(self, cache_dir: str | Path | None):
        self.cache = ProfileCache(cache_dir) if cache_dir else None
        self.proc: Worker | None = None
        self.available = BACKENDS["tensorflow"].available()
        self.memo: dict[str, dict] = {}
        self.computed = 0

    def get(self, request: ModelRequest, deadline_s: float) -> dict:
        payload = request.to_payload()
        ident = json.dumps(payload, sort_keys=True)
        if ident in self.memo:
            return self.memo[ident]
        result = self.cache.load(payload) if self.cache else {}
        if not result and self.available and deadline_s > 0:
            result = self._run(payload, deadline_s)
            if result:
                self.computed += 1
                if self.cache:
                    try:
                        self.cache.store(payload, result)
                    except UsageError as exc:  # a cache that cannot be written only costs time
                        print(f"kbench: warning: profile cache not written: {exc}", file=sys.stderr)
        self.memo[ident] = result
        return result

    def _run(self, payload: dict, deadline_s: float) -> dict:
        try:
            if self.proc is None:
                self.proc = Worker("tensorflow", command="profile")
            self.proc.send(payload)
            tag, answer = self.proc.receive(deadline_s)
        except OSError:
            tag, answer = None, {}
        if tag != PROFILE:
            self.close()
            return {}
        if answer.get("status") != "ok":
            return {}
        return {k: answer.get(k) for k in PROFILE_FIELDS}

    def close(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


# ----------------------------------------------------------------------------- rows

class _EnvCache:
    def __init__(self):
        self.cache: dict[tuple, dict] = {}
        self.device: dict[str, dict] = {}

    def get(self, backend: str) -> dict:
        dev = self.device.get(backend)
        k = (backend, dev["device"], dev["device_kind"]) if dev else (backend, "", "")
        if k not in self.cache:
            environment = env.environment(k[1] or "", k[2] or None, BACKENDS[backend].version())
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
        "samples_per_s": significant(sps),
        "latency_ms_p50": significant(result.get("latency_ms_p50")), "latency_ms_p90": significant(result.get("latency_ms_p90")),
        "latency_ms_p99": significant(result.get("latency_ms_p99")), "latency_ms_std": significant(result.get("latency_ms_std")),
        "compile_s": significant(result.get("compile_s"), 4), "peak_mem_mb": significant(result.get("peak_mem_mb"), 6),
        "params_trainable": result.get("params_trainable") or profile.get("params_trainable") or "",
        "macs": profile.get("macs") or "", "flops_tf": flops or "",
        "achieved_tflops": significant(achieved), "mfu": significant(achieved / peak) if (achieved and peak) else "",
        **{k: environment.get(k, "") for k in env.ENV_COLUMNS}, "device": device, "device_kind": kind,
        "input_c": c, "variant": cfg.variant_text, "num_classes": cfg.num_classes or "",
        "n_iters": cfg.iters if status == "ok" else "", "warmup": cfg.warmup if status == "ok" else "",
        "cv": significant(result.get("cv"), 4), "latency_ms_mean": significant(result.get("latency_ms_mean")),
        "latency_ms_min": significant(result.get("latency_ms_min")), "peak_tflops": significant(peak) if peak else "",
        "flops_multiplier": mult, "peak_mem_source": result.get("peak_mem_source", ""),
        "model_mem_mb": significant(result.get("model_mem_mb"), 6),
        "n_devices": cfg.n_devices,
        "per_device_batch": "" if cfg.batch_size % cfg.n_devices else cfg.batch_size // cfg.n_devices,
        "samples_per_s_iqr": significant(result.get("samples_per_s_iqr")) if status == "ok" else "",
        "rounds": result.get("rounds", "") if status == "ok" else "",
        "samples_per_s_rounds": result.get("samples_per_s_rounds", "") if status == "ok" else "",
        "other_cpu_frac": significant(result.get("other_cpu_frac"), 3) if status == "ok" else "",
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


@dataclasses.dataclass
class ProfileOnlyResult:
    cache_dir: Path
    profiled: int  # requests with a profile (computed now or already cached)
    computed: int
    failed: list[str]


def fill_profile_cache(spec: SweepSpec, requests: list[ModelRequest]) -> ProfileOnlyResult:
    """``--profile-only``: profile every request into the cache; measure nothing, write no CSV."""
    profiler = Profiler(spec.profile_cache_dir)
    failed = []
    try:
        for request in requests:
            if not profiler.get(request, spec.timeout_s):
                failed.append(request.name)
    finally:
        profiler.close()
    return ProfileOnlyResult(spec.profile_cache_dir, len(requests) - len(failed), profiler.computed, failed)


class _ModelWorker:
    """The measuring worker of one (model, backend): started when first needed, replaced after
    a death, and retried once when it was killed from outside (see ``kbench.running.worker``)."""

    NOT_RUN = object()  # the time budget ran out: no row

    def __init__(self, backend: str, spec: SweepSpec, remaining: Callable[[], float], envs: "_EnvCache",
                 n_devices: int = 1):
        self.backend = backend
        self.n_devices = n_devices
        self.spec = spec
        self.remaining = remaining
        self.envs = envs
        self.worker: Worker | None = None
        self.fresh_per_config = False
        self.broken: str | None = None  # why a worker cannot start: every configuration fails alike
        self.retried = False  # the configuration in flight was retried after a SIGKILL

    def start(self):
        """None when a worker is ready; NOT_RUN; or the reason it cannot start."""
        if self.worker is not None:
            return None
        if self.broken:
            return self.broken
        for attempt in (1, 2):
            worker = Worker(self.backend, n_devices=self.n_devices) if self.n_devices > 1 else Worker(self.backend)
            tag, info = worker.receive(min(max(STARTUP_TIMEOUT_S, self.spec.timeout_s), self.remaining()))
            if tag == READY:
                self.worker = worker
                self.envs.device[self.backend] = {"device": info.get("device", ""),
                                                  "device_kind": info.get("device_kind", "")}
                self.fresh_per_config = bool(info.get("fresh_worker_per_config"))
                return None
            if tag is None:
                worker.kill()
                worker.stop()
                if self.remaining() <= 0:
                    return self.NOT_RUN  # the budget ran out while starting: not run
                self.broken = "worker did not start in time"
                return self.broken
            death = worker.death()
            worker.stop()
            if death.killed_from_outside and attempt == 1:
                continue  # killed during start-up by someone else: one more try
            self.broken = death.message
            return self.broken
        return self.broken

    def measure(self, cfg: Config):
        """The worker's result dict for ``cfg`` (a row's status and fields), or NOT_RUN."""
        result = self._attempt(cfg)
        if result is self.NOT_RUN or result.get("status") == "ok" or not self.retried:
            return result
        return {**result, "error": f"{result.get('error', '')} (second attempt: the first worker was killed by SIGKILL)"}

    def _attempt(self, cfg: Config):
        self.retried = False
        for attempt in (1, 2):
            problem = self.start()
            if problem is self.NOT_RUN:
                return self.NOT_RUN
            if problem:
                return {"status": "error", "error": f"{self.backend} worker failed to start: {problem}"}
            worker = self.worker
            tag, result = (worker.receive(min(60.0, self.remaining())) if worker.send(cfg.worker_payload())
                           else ("EOF", {}))
            if tag == START:
                tag, result = worker.receive(min(self.spec.timeout_s, self.remaining()))
            if tag == RESULT:
                if self.fresh_per_config:  # see Backend.fresh_worker_per_config
                    self.stop()
                return result
            if tag is None:  # timeout (or the budget ran out)
                self.kill()
                if self.remaining() <= 0:
                    return self.NOT_RUN  # --resume runs it
                return {"status": "timeout", "error": f"no result within --timeout {self.spec.timeout_s:g} s; worker killed"}
            death = worker.death()  # EOF: the worker died during this configuration
            self.stop()
            if death.killed_from_outside:
                if attempt == 1:
                    self.retried = True
                    continue  # once more, in a fresh worker
                return {"status": "oom", "error": "worker killed by SIGKILL twice at this configuration, the second "
                        "time in a fresh worker: likely the kernel's out-of-memory killer"}
            return {"status": death.status, "error": death.message}
        raise AssertionError("unreachable")

    def kill(self):
        if self.worker is not None:
            self.worker.kill()
            self.worker.stop()
            self.worker = None

    def stop(self):
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


def open_log(spec: SweepSpec) -> CsvLog:
    """The sweep's CSV, created (header) or checked (columns, every row by the schema's rules)
    before it is changed in any way -- after ``validate``."""
    def mismatch(header: list[str]) -> str:
        if schema.is_older_header(header):
            return (f"cannot resume {spec.out!r}: it was written by an earlier kbench version (no "
                    f"{', '.join(schema.SWEEP_COLUMNS[len(header):])} column); write to a new --out")
        return (f"cannot resume {spec.out!r}: not a kbench sweep CSV of this version "
                f"({schema.header_problem(header)})")

    return CsvLog(spec.out, schema.SWEEP_COLUMNS, exists_hint=None if spec.resume else
                  "pass --resume to continue it or choose another --out", mismatch=mismatch,
                  check=lambda rows: schema.check_rows(rows, spec.out))


def run_sweep(spec: SweepSpec, on_row: Callable[[dict], None] | None = None) -> SweepResult:
    """Measure every configuration of ``spec`` not yet in ``spec.out`` (see the module docstring).

    Concurrency: each configuration is decided and written under the CSV's lock (``CsvLog``):
    the rows are read again, a key already there is skipped (or, with ``retry_failed``, an
    ``error``/``timeout`` row from an earlier run is measured again and replaced), then the
    configuration is measured and its row appended before the lock is released. Sweeps sharing
    one file thus write each key once, and measure one at a time.
    """
    from kbench.common import interrupts

    requests = validate(spec)
    configs = plan(spec, requests)
    if spec.shard:
        from kbench.running import shard

        configs = shard.select(configs, spec.shard, spec.profile_cache_dir)
    log = open_log(spec)  # creates the file (header) only now, with every argument valid
    run_id = env.new_run_id()
    envs = _EnvCache()
    profiler = Profiler(spec.profile_cache_dir)
    started = time.monotonic()
    budget = spec.time_budget_s
    written: list[dict] = []
    with log.locked():
        existing = schema.check_rows(log.rows(), spec.out)
    initial_keys = {schema.row_key(r): r["status"] for r in existing}
    pending = [c for c in configs if c.key not in initial_keys
               or (spec.retry_failed and initial_keys[c.key] in schema.RETRIED_STATUSES)]
    skipped_existing = len(configs) - len(pending)
    show = spec.progress if spec.progress is not None else sys.stderr.isatty()
    progress = _Progress(len(pending), show)

    def remaining() -> float:
        return float("inf") if budget is None else budget - (time.monotonic() - started)

    def decide(cfg: Config, rows: list[dict]):
        """Under the lock: 'done' (someone wrote the key), ('replace', old rows) or 'run'."""
        same = [r for r in rows if schema.row_key(r) == cfg.key]
        if not same:
            return "run", []
        if spec.retry_failed and all(r["status"] in schema.RETRIED_STATUSES and r["run_id"] != run_id for r in same):
            return "run", same
        return "done", same

    def oom_limit(cfg: Config, rows: list[dict]) -> int | None:
        sizes = [int(r["batch_size"]) for r in rows if r["status"] == "oom" and schema.group_key(schema.row_key(r)) == cfg.group]
        return min(sizes) if sizes else None

    def emit_row(cfg: Config, result: dict, profile: dict, rows: list[dict], old: list[dict]):
        row = make_row(cfg, result, profile, run_id, envs.get(cfg.backend), spec.peak_tflops)
        problem = schema.row_problem(row)
        if problem:  # a measurement no reader would accept is an error row, never a poisoned file
            row = make_row(cfg, {"status": "error", "error": f"invalid measurement: {problem}"}, profile, run_id,
                           envs.get(cfg.backend), spec.peak_tflops)
        row["scaling_efficiency"] = scaling.efficiency(row, rows)
        if old:  # --retry-failed: the new row replaces the failed one, one row per key
            log.replace([r for r in rows if all(r is not o for o in old)] + [row])
        else:
            log.append(row)
        written.append(row)
        if on_row:
            on_row(row)
        progress.advance()

    not_run = 0
    groups: dict[tuple[str, str, int], list[Config]] = {}
    for cfg in pending:  # one worker per (model, backend, n_devices)
        groups.setdefault((cfg.model, cfg.backend, cfg.n_devices), []).append(cfg)
    try:
        for (model, backend, n_devices), todo in groups.items():
            if remaining() <= 0:
                not_run += len(todo)
                continue
            profile = profiler.get(todo[0].request, min(spec.timeout_s, remaining()))
            runner = _ModelWorker(backend, spec, remaining, envs, n_devices)
            try:
                for cfg in todo:
                    interrupts.checkpoint()
                    if remaining() <= 0:
                        not_run += 1
                        continue
                    progress.describe(cfg.describe())
                    skip_reason = cfg.skip_reason()
                    if not skip_reason and runner.start() is _ModelWorker.NOT_RUN:
                        not_run += 1  # started outside the lock: other sweeps' workers start meanwhile
                        continue
                    with log.locked(remaining() if budget is not None else None) as held:
                        if not held:
                            not_run += 1
                            continue
                        rows = schema.check_rows(log.rows(), spec.out)
                        action, old = decide(cfg, rows)
                        if action == "done":
                            skipped_existing += 1
                            progress.advance()
                            continue
                        limit = oom_limit(cfg, rows)
                        if limit is not None and cfg.batch_size > limit:
                            result = {"status": "skipped", "error": f"larger than batch {limit}, which ran out of memory"}
                        elif skip_reason:
                            result = {"status": "skipped", "error": skip_reason}
                        else:
                            result = runner.measure(cfg)
                            if result is _ModelWorker.NOT_RUN:
                                not_run += 1
                                continue
                        emit_row(cfg, result, profile, rows, old)
            except BaseException:  # Ctrl-C, SIGTERM or a bug: do not leave a worker measuring on its own
                runner.kill()
                raise
            finally:
                runner.stop()
    finally:
        progress.close()
        profiler.close()
        log.close()
    return SweepResult(Path(spec.out), written, not_run, skipped_existing)


def summary_rows(rows: Iterable[dict]) -> list[dict]:
    """The table a sweep prints: the model as built ("resnet50 [groups=32]"), then the measurement."""
    from kbench.models import registry
    from kbench.common.humanize import model_label

    def label(row):
        try:
            default = registry.get_spec(row["model"]).default_num_classes
        except UsageError:
            default = None
        classes = row.get("num_classes")
        return model_label(row["model"], row.get("variant"), classes if str(classes) != str(default) else None)

    return [{"model": label(r), "batch": r["batch_size"], "mode": r["mode"], "backend": r["backend"],
             "precision": r["precision"], "jit": r["jit"], "samples/s": r["samples_per_s"],
             "p50_ms": r["latency_ms_p50"], "cv": r["cv"], "status": r["status"]} for r in rows]


def sweep_models(models, *, out: str, batch_sizes: Sequence[int] = (1, 8, 32),
                 modes: Sequence[str] = ("infer", "train"), precisions: Sequence[str] = ("float32",),
                 backends: Sequence[str] = ("tensorflow",), input_size=None, num_classes: int | None = None,
                 variant: dict | None = None, **options: Any) -> SweepResult:
    """``kbench sweep`` from Python: measure ``models`` and append the rows to the CSV ``out``.

    ``models``: a selector string (as on the command line), a ``keras.Model``, or a list of
    those. A model object is saved to a temporary ``.keras`` file for the sweep's workers (it
    must be saveable: a subclassed model needs ``get_config``); its rows are named
    ``model.name``. ``options`` are the other ``SweepSpec`` fields (``warmup``,
    ``iters``, ``resume``, ...). Returns the ``SweepResult``.
    """
    import tempfile

    from kbench.models import registry, selectors

    items = [models] if isinstance(models, str) or not isinstance(models, (list, tuple)) else list(models)
    shape = tuple(input_size) if isinstance(input_size, (list, tuple)) else input_size
    if isinstance(shape, int):
        shape = (shape, shape)
    with tempfile.TemporaryDirectory(prefix="kbench-models-") as saved_dir:
        resolved: list = []
        for item in items:
            if isinstance(item, str):
                resolved += selectors.expand(item)
            else:
                request = registry.resolve(item, shape, num_classes, variant)
                resolved.append(dataclasses.replace(request, spec=request.spec.saved(saved_dir, request.input_shape)))
        spec = SweepSpec(models=resolved, batch_sizes=list(batch_sizes), modes=list(modes),
                         precisions=list(precisions), backends=list(backends), input_size=shape,
                         num_classes=num_classes, variant=dict(variant or {}), out=out, **options)
        return run_sweep(spec)
