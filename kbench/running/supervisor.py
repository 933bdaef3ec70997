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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (for a process group's coordinator)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def failure_of(index: int, count: int, result: dict) -> dict:
    """A process's failed result as the group's, its error naming the process."""
    return {**result, "error": f"process {index} of {count}: {result.get('error', '')}"}


def combine_results(results: list[dict]) -> dict:
    """One row's result from the results of a process group's processes (in process order): the
    first failure, named by its process; else process 0's timing, provided that every process
    ran the same number of steps (an ``error`` otherwise: the processes did not run in step).
    Its ``other_cpu_frac`` leaves out the group's other processes, which are part of the
    measurement, not load from outside (their own shares, measured over the same steps)."""
    for index, result in enumerate(results):
        if result.get("status") != "ok":
            return failure_of(index, len(results), result)
    steps = [result.get("steps") for result in results]
    if len(set(steps)) != 1 or steps[0] is None:
        counts = ", ".join(f"process {i}: {n}" for i, n in enumerate(steps))
        return {**results[0], "status": "error", "error": f"the processes ran different numbers of steps ({counts})"}
    other, peers = results[0].get("other_cpu_frac"), [result.get("own_cpu_frac") for result in results[1:]]
    other = None if other is None or None in peers else max(0.0, other - sum(peers))
    return {**results[0], "other_cpu_frac": other}


class ProcessGroup:
    """Measures the configurations of one (model, backend, n devices, P processes) on P worker
    processes started together on this host, each driving n/P devices, that join one
    ``jax.distributed`` job (coordinator: process 0, on 127.0.0.1 and a free port; see
    ``Backend.join_processes``). Every configuration goes to every process; each builds the
    model, feeds its part of the global batch and times the same steps; the row is
    ``combine_results``'. The group is never pooled: it is started for its model and stopped
    after it. If one process dies, hangs past ``--timeout`` or answers a failure, all of them
    are killed (each also dies with the sweep, like every worker) and the next configuration
    starts a fresh group: nothing is left running. Same interface as ``Runner``."""

    def __init__(self, backend: str, n_devices: int, n_processes: int, timeout_s: float,
                 remaining: Callable[[], float], on_device: Callable[[str, dict], None]):
        self.backend = backend
        self.n_devices = n_devices
        self.n_processes = n_processes
        self.timeout_s = timeout_s
        self.remaining = remaining
        self.on_device = on_device
        self.workers: list[Worker] = []
        self.broken: str | None = None

    def start(self):
        """None when every process is ready; ``NOT_RUN``; or why the group cannot start."""
        from kbench.running.worker import Membership

        if self.workers:
            return None
        if self.broken:
            return self.broken
        allowance = max(STARTUP_TIMEOUT_S, self.timeout_s)
        coordinator = f"127.0.0.1:{free_port()}"
        self.workers = [Worker(self.backend, self.n_devices // self.n_processes,
                               Membership(self.n_processes, i, coordinator, int(allowance)))
                        for i in range(self.n_processes)]
        ready, problem = self._gather(READY, min(allowance, self.remaining()))
        if problem is None:
            for worker, info in zip(self.workers, ready):
                worker.ready = info
            self.on_device(self.backend, {"device": ready[0].get("device", ""),
                                          "device_kind": ready[0].get("device_kind", "")})
            return None
        if problem is NOT_RUN:
            return NOT_RUN
        self.broken = f"process group of {self.n_processes} did not start: {problem[1]}"
        return self.broken

    def _gather(self, tag: str, timeout_s: float):
        """(every process's ``tag`` message in process order, None) or (None, what went wrong:
        ``NOT_RUN`` when the budget ran out, else (status, message): ``error``/``oom`` naming
        the processes that died or the first that answered a failure (its peers may wait for it
        forever in a collective), ``timeout`` naming those that did not answer). On any problem
        every process of the group is killed."""
        import time

        deadline = time.monotonic() + max(0.0, timeout_s)
        answers: dict[int, dict] = {}
        while len(answers) < len(self.workers):
            for index, worker in enumerate(self.workers):
                if index in answers:
                    continue
                got, payload = worker.receive(0.05)
                if got == tag and tag == RESULT and payload.get("status") not in CLEAN_STATUSES:
                    self.kill()
                    failed = failure_of(index, self.n_processes, payload)
                    return None, (failed["status"], f"{failed['error']}; the group's other processes were killed")
                if got == tag:
                    answers[index] = payload
                elif got == "EOF":
                    return None, self._deaths(index)
            if len(answers) < len(self.workers) and time.monotonic() >= deadline:
                self.kill()
                if self.remaining() <= 0:
                    return None, NOT_RUN
                silent = [str(i) for i in range(self.n_processes) if i not in answers]
                return None, ("timeout", f"process {', '.join(silent)} of {self.n_processes} gave no {tag} "
                                         f"in {timeout_s:g} s")
        return [answers[i] for i in range(len(self.workers))], None

    def _deaths(self, first: int | None = None) -> tuple[str, str]:
        """(status, message) naming the processes that died (``first``: the one whose stream
        ended, found within a poll of its death) and why; then every process is killed, never
        left waiting for a peer that is gone."""
        dead = [(i, w.death()) for i, w in enumerate(self.workers) if i == first or not w.alive]
        self.kill()
        status = "oom" if any(death.status == "oom" for _, death in dead) else "error"
        text = "; ".join(f"process {i} of {self.n_processes} died: {death.message}" for i, death in dead)
        return status, f"{text}; the group's other processes were killed"

    def measure(self, cfg: Config):
        """The combined result dict for ``cfg`` (``combine_results``), or ``NOT_RUN``."""
        problem = self.start()
        if problem is NOT_RUN:
            return NOT_RUN
        if problem:
            return {"status": "error", "error": f"{self.backend} {problem}"}
        payload = cfg.worker_payload()
        sent = [worker.send(payload) for worker in self.workers]
        results, problem = (None, None) if all(sent) else (None, self._deaths(sent.index(False)))
        if problem is None:
            _, problem = self._gather(START, min(60.0, self.remaining()))
        if problem is None:
            results, problem = self._gather(RESULT, min(self.timeout_s, self.remaining()))
        if problem is NOT_RUN:
            return NOT_RUN  # --resume runs it
        if problem is not None:
            status, message = problem
            if status == "timeout":
                message = (f"no result within --timeout {self.timeout_s:g} s ({message}); all {self.n_processes} "
                           f"processes killed")
            return {"status": status, "error": message}
        result = combine_results(results)
        if result.get("status") not in CLEAN_STATUSES:
            self.kill()
        elif any(worker.ready.get("fresh_worker_per_config") for worker in self.workers):
            self.release()  # see Backend.fresh_worker_per_config
        return result

    def kill(self):
        """Kill every process of the group (after a failure, an interrupt or a bug)."""
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.kill()
        for worker in workers:
            worker.stop()

    def release(self):
        """The model is done: every process is told to stop (their job ends together)."""
        workers, self.workers = self.workers, []
        for worker in workers:  # all at once: each waits for the others at jax.distributed's shutdown barrier
            try:
                worker.proc.stdin.close()
            except OSError:
                pass
        for worker in workers:
            worker.stop()


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
