"""The sweep's side of its workers: getting a configuration measured, or a model profiled, by a
worker of the pool (``kbench.running.worker.POOL``), and what a worker's death means for its row.

* **Warm workers.** A ``Runner`` measures one group of configurations (one model, backend and
  device count) on a pooled worker and returns it to the pool after the group, so the next model
  of the same backend starts at once. A worker that failed in any way (it died, hung, or
  answered ``oom``/``error``: the precision check included) is discarded, and the next
  configuration gets a fresh one; so a crash in one model is its own row and never another's.
* **Workers that die.** A worker killed from outside (SIGKILL without the kernel's OOM evidence,
  ``kbench.running.worker.Death``) is not an ``oom``: the configuration is retried once in a fresh
  worker; a second SIGKILL there is recorded as ``oom``.
* **Timeout.** ``--timeout`` bounds one configuration (build + compile + warm-up + timed steps),
  counted from the worker's START message; a worker's start-up (imports) has its own allowance of
  ``max(STARTUP_TIMEOUT_S, timeout)``. The time budget (``remaining``) bounds both: a
  configuration it interrupts is *not run* (``NOT_RUN``: no row, ``--resume`` runs it).
* **FLOPs.** A ``Profiler`` answers a model request's TF profile from the cache
  (``kbench.running.profile_cache``), else from a pooled TensorFlow worker (the same one that
  measures, on a TensorFlow sweep), and stores it in the cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from kbench.errors import UsageError
from kbench.models.registry import ModelRequest
from kbench.running.backends import BACKENDS
from kbench.running.plan import Config
from kbench.running.profile_cache import FIELDS as PROFILE_FIELDS
from kbench.running.profile_cache import ProfileCache
from kbench.running.worker import POOL, PROFILE, PROFILE_OP, READY, RESULT, START, Worker, WorkerPool

STARTUP_TIMEOUT_S = 120.0
NOT_RUN = object()  # the time budget ran out: no row
CLEAN_STATUSES = ("ok", "skipped")  # a worker that answered these may serve the next configuration


def start_worker(pool: WorkerPool, backend: str, n_devices: int, timeout_s: float, remaining: Callable[[], float]):
    """A ready worker from ``pool``, or why there is none: ``NOT_RUN`` (the budget ran out while it
    started) or a message (it could not start). A worker killed from outside while it started is
    given one more try."""
    for attempt in (1, 2):
        worker = pool.acquire(backend, n_devices)
        tag, _ = worker.wait_ready(min(max(STARTUP_TIMEOUT_S, timeout_s), remaining()))
        if tag == READY:
            return worker
        if tag is None:
            pool.discard(worker, kill=True)
            return NOT_RUN if remaining() <= 0 else "worker did not start in time"
        death = worker.death()
        pool.discard(worker)
        if death.killed_from_outside and attempt == 1:
            continue
        return death.message
    return "worker did not start"


class Runner:
    """Measures the configurations of one (model, backend, device count) on a pooled worker."""

    def __init__(self, backend: str, n_devices: int, timeout_s: float, remaining: Callable[[], float],
                 on_device: Callable[[str, dict], None], pool: WorkerPool = POOL):
        self.backend = backend
        self.n_devices = n_devices
        self.timeout_s = timeout_s
        self.remaining = remaining
        self.on_device = on_device  # told the device each new worker announced
        self.pool = pool
        self.worker: Worker | None = None
        self.broken: str | None = None  # why a worker cannot start: every configuration fails alike
        self.retried = False  # the configuration in flight was retried after a SIGKILL

    def start(self):
        """None when a worker is ready; ``NOT_RUN``; or the reason it cannot start."""
        if self.worker is not None:
            return None
        if self.broken:
            return self.broken
        found = start_worker(self.pool, self.backend, self.n_devices, self.timeout_s, self.remaining)
        if isinstance(found, Worker):
            self.worker = found
            self.on_device(self.backend, {"device": found.ready.get("device", ""),
                                          "device_kind": found.ready.get("device_kind", "")})
            return None
        if found is not NOT_RUN:
            self.broken = found
        return found

    def measure(self, cfg: Config):
        """The worker's result dict for ``cfg`` (a row's status and fields), or ``NOT_RUN``."""
        result = self._attempt(cfg)
        if result is NOT_RUN or result.get("status") == "ok" or not self.retried:
            return result
        return {**result, "error": f"{result.get('error', '')} (second attempt: the first worker was killed by SIGKILL)"}

    def _attempt(self, cfg: Config):
        self.retried = False
        for attempt in (1, 2):
            problem = self.start()
            if problem is NOT_RUN:
                return NOT_RUN
            if problem:
                return {"status": "error", "error": f"{self.backend} worker failed to start: {problem}"}
            worker = self.worker
            tag, result = (worker.receive(min(60.0, self.remaining())) if worker.send(cfg.worker_payload())
                           else ("EOF", {}))
            if tag == START:
                tag, result = worker.receive(min(self.timeout_s, self.remaining()))
            if tag == RESULT:
                if worker.ready.get("fresh_worker_per_config") or result.get("status") not in CLEAN_STATUSES:
                    self._drop()  # see Backend.fresh_worker_per_config; a failure leaves nothing behind
                return result
            if tag is None:  # timeout (or the budget ran out)
                self._drop(kill=True)
                if self.remaining() <= 0:
                    return NOT_RUN  # --resume runs it
                return {"status": "timeout", "error": f"no result within --timeout {self.timeout_s:g} s; worker killed"}
            death = worker.death()  # EOF: the worker died during this configuration
            self._drop()
            if death.killed_from_outside:
                if attempt == 1:
                    self.retried = True
                    continue  # once more, in a fresh worker
                return {"status": "oom", "error": "worker killed by SIGKILL twice at this configuration, the second "
                        "time in a fresh worker: likely the kernel's out-of-memory killer"}
            return {"status": death.status, "error": death.message}
        raise AssertionError("unreachable")

    def _drop(self, kill: bool = False):
        if self.worker is not None:
            self.pool.discard(self.worker, kill=kill)
            self.worker = None

    def kill(self):
        """After an interrupt or a bug: never leave a worker measuring on its own."""
        self._drop(kill=True)

    def release(self):
        """The group is done: a healthy worker goes back to the pool for the next one."""
        if self.worker is not None:
            self.pool.release(self.worker)
            self.worker = None


class Profiler:
    """TF-profile lookups: the cache, else a pooled TensorFlow worker (module docstring)."""

    def __init__(self, cache_dir: str | Path | None, pool: WorkerPool = POOL):
        self.cache = ProfileCache(cache_dir) if cache_dir else None
        self.pool = pool
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
        worker = start_worker(self.pool, "tensorflow", 1, deadline_s, lambda: deadline_s)
        if not isinstance(worker, Worker):
            return {}
        sent = worker.send({"op": PROFILE_OP, "request": payload})
        tag, answer = worker.receive(deadline_s) if sent else ("EOF", {})
        if tag != PROFILE:
            self.pool.discard(worker, kill=True)
            return {}
        self.pool.release(worker)
        if answer.get("status") != "ok":
            return {}
        return {k: answer.get(k) for k in PROFILE_FIELDS}
