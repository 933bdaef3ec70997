"""Throughput sweeps: models x batch sizes x modes x precisions x jit x backends x devices -> CSV rows.

The options and the plan are ``kbench.running.plan`` (each option declared once, resolved once at
the edge); workers and what their failures mean, ``kbench.running.supervisor``; the measuring
itself happens in ``kbench.running.timing`` inside worker processes (``kbench.running.worker``),
and everything backend-specific in ``kbench.running.backends``. Rows: ``kbench.running.rows``,
columns and keys: ``kbench.results.schema``.

* **Isolation with warm workers.** Each configuration runs in a worker process (``KERAS_BACKEND``
  set), reused across the models of one backend and device count and returned to a pool between
  them; a crash, hang or leak takes down only that worker: the configuration becomes an
  ``error``/``oom``/``timeout`` row and the next one gets a fresh worker. Where the device's peak
  memory cannot be reset in a process (JAX on a GPU) or ``KBENCH_FRESH_WORKER=1``, every
  configuration gets a fresh worker (``Backend.fresh_worker_per_config``).
* **No lost data.** Every finished configuration is appended to the CSV at once (one atomic
  write + fsync per row, ``kbench.common.csvio.CsvLog``). ``--resume`` reads the file, keys rows
  by ``kbench.results.schema.KEY_COLUMNS`` and skips keys already written, whatever their status,
  so a key never appears twice in a file. With ``retry_failed`` (``--retry-failed``) the
  ``error`` and ``timeout`` rows of earlier runs are measured again, each new row replacing the
  old one (the file is rewritten atomically); ``oom`` and ``skipped`` rows stay.
* **Concurrent sweeps on one file.** Each configuration is decided and written under an exclusive
  lock on the CSV (``flock``): the rows are read again, a key someone else wrote meanwhile is
  skipped, and the configuration is measured and appended before the lock is released. N sweeps
  on one file write one header and each key once (and never measure at the same time, which
  would distort each other's numbers).
* **Out of memory.** After an ``oom`` at batch B, every larger batch of the same group
  (``kbench.results.schema.GROUP_COLUMNS``) is written as ``skipped`` without being tried.
* **Time budget.** ``--time-budget`` bounds the whole sweep: when it runs out the configuration in
  flight is stopped and it and all remaining configurations are simply *not run* (no row), so
  that ``--resume`` with a new budget picks them up; the end-of-sweep message counts them.
* **FLOPs.** ``flops_tf``/``macs`` come from the TensorFlow profile of the model at the sweep's
  input, cached as JSON under ``--profile-cache`` (default: ``.profile-cache/`` beside ``--out``)
  and keyed on the request and on the source of the zoo and of the counting code
  (``kbench.running.profile_cache``), so an edited builder is profiled again. Without TensorFlow
  and without a cache entry the FLOPs columns stay empty (``achieved_tflops``/``mfu`` too).
  ``profile_only`` (``--profile-only``) fills the cache and measures nothing.
* **Devices.** ``devices`` (``--devices 1,2,4``) adds ``n_devices`` to the key: ``batch_size`` is
  the global batch, split over n devices by the backend's data parallelism (checked: a
  configuration that silently runs on one device is an ``error`` row); n = 1 is measured first so
  that ``scaling_efficiency`` (``kbench.results.scaling``) is computed as each row is written.
* **Processes.** ``processes`` (``--processes P``, jax) adds ``n_processes`` to the key: each
  configuration's n devices are driven by P worker processes of one ``jax.distributed`` job
  (``kbench.running.supervisor.ProcessGroup``; ``--launcher srun``: the tasks of one srun step of
  the sweep's Slurm allocation), each feeding its part of the global batch; the
  row holds process 0's timing once every process has run the same steps. One process dying or
  hanging makes the configuration an ``error``/``timeout`` row and kills the whole group.
* **Shards.** ``shard`` (``--shard K/N``) measures only the K-th of N cost-balanced slices of the
  plan (``kbench.running.shard``); ``kbench merge`` joins the shards' CSVs.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

from kbench.common import env
from kbench.common.csvio import CsvLog
from kbench.results import scaling, schema
from kbench.running.plan import Config, ResolvedSweep, SweepSpec, plan, resolve, spec_from_options
from kbench.running.rows import EnvironmentCache, make_row
from kbench.running.supervisor import NOT_RUN, ProcessGroup, Profiler, Runner


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


def fill_profile_cache(resolved: ResolvedSweep) -> ProfileOnlyResult:
    """``--profile-only``: profile every request into the cache; measure nothing, write no CSV."""
    spec = resolved.spec
    profiler = Profiler(spec.profile_cache_dir)
    failed = [request.name for request in resolved.requests if not profiler.get(request, spec.timeout_s)]
    return ProfileOnlyResult(spec.profile_cache_dir, len(resolved.requests) - len(failed), profiler.computed, failed)


def open_log(spec: SweepSpec) -> CsvLog:
    """The sweep's CSV, created (header) or checked (columns, every row by the schema's rules)
    before it is changed in any way -- after ``resolve``."""
    def mismatch(header: list[str]) -> str:
        if schema.is_older_header(header):
            return (f"cannot resume {spec.out!r}: it was written by an earlier kbench version (no "
                    f"{', '.join(schema.SWEEP_COLUMNS[len(header):])} column); write to a new --out")
        return (f"cannot resume {spec.out!r}: not a kbench sweep CSV of this version "
                f"({schema.header_problem(header)})")

    return CsvLog(spec.out, schema.SWEEP_COLUMNS, exists_hint=None if spec.resume else
                  "pass --resume to continue it or choose another --out", mismatch=mismatch,
                  check=lambda rows: schema.check_rows(rows, spec.out))


def run_sweep(resolved: ResolvedSweep, on_row: Callable[[dict], None] | None = None) -> SweepResult:
    """Measure every configuration of ``resolved`` not yet in its ``out`` (module docstring).

    Concurrency: each configuration is decided and written under the CSV's lock (``CsvLog``):
    the rows are read again, a key already there is skipped (or, with ``retry_failed``, an
    ``error``/``timeout`` row from an earlier run is measured again and replaced), then the
    configuration is measured and its row appended before the lock is released. Sweeps sharing
    one file thus write each key once, and measure one at a time.
    """
    from kbench.common import interrupts

    spec = resolved.spec
    configs = plan(resolved)
    if spec.shard:
        from kbench.running import shard

        configs = shard.select(configs, spec.shard, spec.profile_cache_dir)
    log = open_log(spec)  # creates the file (header) only now, with every argument valid
    run_id = env.new_run_id()
    envs = EnvironmentCache()
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
        sizes = [int(r["batch_size"]) for r in rows
                 if r["status"] == "oom" and schema.group_key(schema.row_key(r)) == cfg.group]
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

    def note_device(backend: str, device: dict):
        envs.device[backend] = device

    not_run = 0
    groups: dict[tuple[str, str, int, int], list[Config]] = {}
    for cfg in pending:  # one runner per (model, backend, n_devices, n_processes); a worker outlives it in the pool
        groups.setdefault((cfg.model, cfg.backend, cfg.n_devices, cfg.n_processes), []).append(cfg)
    try:
        for (model, backend, n_devices, n_processes), todo in groups.items():
            if remaining() <= 0:
                not_run += len(todo)
                continue
            # Unknown, the profile is made by the worker from the model the group's first configuration
            # measured, when it can (ok, TensorFlow float32: no second build); else apart, before.
            profile = profiler.known(todo[0].request)
            if profile is None and not profiler.can_profile(todo[0]):
                profile = profiler.get(todo[0].request, min(spec.timeout_s, remaining()))
            runner = (ProcessGroup(backend, n_devices, n_processes, spec.timeout_s, remaining, note_device,
                                   launcher=spec.launcher)
                      if n_processes > 1 else Runner(backend, n_devices, spec.timeout_s, remaining, note_device))
            try:
                for cfg in todo:
                    interrupts.checkpoint()
                    if remaining() <= 0:
                        not_run += 1
                        continue
                    progress.describe(cfg.describe())
                    skip_reason = cfg.skip_reason()
                    if not skip_reason and runner.start() is NOT_RUN:
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
                        computed = None
                        if limit is not None and cfg.batch_size > limit:
                            result = {"status": "skipped", "error": f"larger than batch {limit}, which ran out of memory"}
                        elif skip_reason:
                            result = {"status": "skipped", "error": skip_reason}
                        else:
                            ask = profile is None and profiler.can_profile(cfg)  # one process: a Runner
                            result = runner.measure(cfg, profile=True) if ask else runner.measure(cfg)
                            if result is NOT_RUN:
                                not_run += 1
                                continue
                            computed = runner.profile if ask else None
                        if profile is None:
                            profile = profiler.get(cfg.request, min(spec.timeout_s, remaining()), computed)
                        emit_row(cfg, result, profile, rows, old)
            except BaseException:  # Ctrl-C, SIGTERM or a bug: do not leave a worker measuring on its own
                runner.kill()
                raise
            runner.release()
    finally:
        progress.close()
        log.close()
    return SweepResult(Path(spec.out), written, not_run, skipped_existing)


def sweep_models(models, *, out: str, input_size=None, num_classes: int | None = None,
                 variant: dict | None = None, **options: Any) -> SweepResult:
    """``kbench sweep`` from Python: measure ``models`` and append the rows to the CSV ``out``.

    ``models``: a selector string (as on the command line), a ``keras.Model``, or a list of
    those. A model object is saved to a temporary ``.keras`` file for the sweep's workers (it
    must be saveable: a subclassed model needs ``get_config``); its rows are named
    ``model.name``. ``options`` are the other ``SweepSpec`` options by name (``batch_sizes``,
    ``modes``, ``warmup``, ``iters``, ``resume``, ...), parsed by the same declarations as the
    command line's flags (``kbench.running.plan``). Returns the ``SweepResult``.
    """
    import tempfile

    from kbench.models import registry, selectors
    from kbench.running.plan import parse_option

    items = [models] if isinstance(models, str) or not isinstance(models, (list, tuple)) else list(models)
    shape = parse_option("input_size", input_size, "input_size")
    classes = parse_option("num_classes", num_classes, "num_classes")
    given = {"out": out, "input_size": input_size, "num_classes": num_classes, "variant": variant, **options}
    with tempfile.TemporaryDirectory(prefix="kbench-models-") as saved_dir:
        resolved: list = []
        for item in items:
            if isinstance(item, str):
                resolved += selectors.expand(item)
            else:
                request = registry.resolve(item, shape, classes, variant)
                resolved.append(dataclasses.replace(request, spec=request.spec.saved(saved_dir, request.input_shape)))
        spec = spec_from_options(resolved, {name: (value, name, False) for name, value in given.items()})
        return run_sweep(resolve(spec))
