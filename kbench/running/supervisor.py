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

import itertools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from kbench.errors import UsageError
from kbench.models.registry import ModelRequest
from kbench.running.backends import BACKENDS
from kbench.running.plan import Config
from kbench.running.profile_cache import FIELDS as PROFILE_FIELDS
from kbench.running.profile_cache import ProfileCache
from kbench.running.worker import (POOL, PROFILE, PROFILE_AFTER, PROFILE_OP, READY, RESULT, START, START_TIMEOUT_S,
                                   PipedProcess, Worker, WorkerPool)

STARTUP_TIMEOUT_S = 120.0
NOT_RUN = object()  # the time budget ran out: no row
CLEAN_STATUSES = ("ok", "skipped")
_STEP_NUMBERS = itertools.count(1)  # an srun step's name is unique in the allocation  # a worker that answered these may serve the next configuration


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
        self.profile: dict = {}  # PROFILE_FIELDS of the model the last configuration measured, if asked

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

    def measure(self, cfg: Config, profile: bool = False):
        """The worker's result dict for ``cfg`` (a row's status and fields), or ``NOT_RUN``.
        ``profile``: the worker also profiles the model it measured, when ``ok`` (a TensorFlow
        float32 configuration); its ``PROFILE_FIELDS`` are then ``self.profile`` ({} if none)."""
        self.profile = {}
        result = self._attempt(cfg, profile)
        if result is NOT_RUN or result.get("status") == "ok" or not self.retried:
            return result
        return {**result, "error": f"{result.get('error', '')} (second attempt: the first worker was killed by SIGKILL)"}

    def _attempt(self, cfg: Config, profile: bool):
        self.retried = False
        payload = {**cfg.worker_payload(), **({PROFILE_AFTER: True} if profile else {})}
        for attempt in (1, 2):
            problem = self.start()
            if problem is NOT_RUN:
                return NOT_RUN
            if problem:
                return {"status": "error", "error": f"{self.backend} worker failed to start: {problem}"}
            worker = self.worker
            tag, result = worker.exchange(payload, min(self.timeout_s, self.remaining()),
                                          start_timeout_s=min(START_TIMEOUT_S, self.remaining()))
            if tag == RESULT:
                if profile and result.get("status") == "ok":
                    self._receive_profile(worker)
                if self.worker is not None and (worker.ready.get("fresh_worker_per_config")
                                                or result.get("status") not in CLEAN_STATUSES):
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

    def _receive_profile(self, worker: Worker) -> None:
        """The ``PROFILE`` that follows an ok ``RESULT`` asked for it; a worker that does not
        answer within the time a configuration has is killed (the row stands; the sweep profiles
        the model apart)."""
        tag, answer = worker.receive(min(self.timeout_s, self.remaining()))
        if tag != PROFILE:
            self._drop(kill=True)
        elif answer.get("status") == "ok":
            self.profile = {k: answer.get(k) for k in PROFILE_FIELDS}

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
    processes started together, each driving n/P devices, that join one ``jax.distributed`` job:
    on this host (``launcher`` ``local``; coordinator: process 0, on 127.0.0.1 and a free port;
    see ``Backend.join_processes``), or as the tasks of one srun step (``srun``: ``SrunStep``). Every configuration goes to every process; each builds the
    model, feeds its part of the global batch and times the same steps; the row is
    ``combine_results``'. The group is never pooled: it is started for its model and stopped
    after it. If one process dies, hangs past ``--timeout`` or answers a failure, all of them
    are killed (each also dies with the sweep, like every worker) and the next configuration
    starts a fresh group: nothing is left running. Same interface as ``Runner``."""

    def __init__(self, backend: str, n_devices: int, n_processes: int, timeout_s: float,
                 remaining: Callable[[], float], on_device: Callable[[str, dict], None], launcher: str = "local"):
        self.launcher = launcher
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
        share = self.n_devices // self.n_processes
        if self.launcher == "srun":
            self.workers = SrunStep(self.backend, share, self.n_processes, int(allowance)).tasks
        else:
            coordinator = f"127.0.0.1:{free_port()}"
            self.workers = [Worker(self.backend, share, Membership(self.n_processes, i, coordinator, int(allowance)))
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
            _, problem = self._gather(START, min(START_TIMEOUT_S, self.remaining()))
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
            worker.close_input()
        for worker in workers:
            worker.stop()


class SrunStep(PipedProcess):
    """The P processes of a ``ProcessGroup`` as the P tasks of ONE job step, ``srun --ntasks=P``, of
    the Slurm allocation the sweep runs in (``--launcher srun``): Slurm places the tasks on the
    allocation's nodes, and each worker joins the ``jax.distributed`` job from Slurm's variables
    (no coordinator given: ``Backend.join_processes``), on its host's devices (or, with none, on
    its share of simulated CPU devices: the same environment as a local worker's, which srun
    exports to every task).

    The line protocol goes through srun's own standard streams, the one channel Slurm already
    carries from every node to the sweep, so nothing else must be reachable (no port of the sweep's
    host that compute nodes may be firewalled from, no secret to authenticate connections):
    srun broadcasts its stdin to every task (``--input=all``), which is what the group needs (every
    process gets every configuration), and EOF on it ends them all; ``--label`` prefixes each line
    of a task's stdout with its task id (``3: RESULT {...}``), so one reader splits the lines into
    one queue per task (``SrunTask``); srun forwards whole lines (its default line-buffered output). A task that fails ends the step
    (``--kill-on-bad-exit=1``), so srun's exit is every task's end, and srun's stderr (the tasks'
    stderr, labelled, and srun's own ``task 1: Killed``) says why.

    ``kill`` cancels the step through Slurm (``scancel`` of the step, found by its unique name:
    it reaches the tasks on every node) and then srun itself; srun also gets SIGTERM if the sweep
    dies (``prctl(PR_SET_PDEATHSIG)``), which it forwards to the tasks."""

    def __init__(self, backend: str, devices_per_process: int, n_processes: int, join_timeout_s: int):
        from kbench.running.worker import Membership, worker_environment

        self.name = f"kbench-{os.getpid()}-{next(_STEP_NUMBERS)}"
        self.n_processes = n_processes
        self.killed_by_us = False
        self.stderr_file = tempfile.TemporaryFile(mode="w+")
        # parent=0: a task's parent is its node's slurmstepd, not this process (maybe on another host).
        env = worker_environment(backend, devices_per_process, Membership(n_processes, None, "", join_timeout_s),
                                 parent=0)
        self.proc = subprocess.Popen(
            ["srun", f"--ntasks={n_processes}", f"--job-name={self.name}", "--kill-on-bad-exit=1", "--label",
             "--input=all", "--export=ALL", sys.executable, "-m", "kbench.running.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file, env=env, text=True, bufsize=1,
            start_new_session=True, preexec_fn=_term_with_parent)
        self.queues = [queue.Queue() for _ in range(n_processes)]
        self.tasks = [SrunTask(self, index) for index in range(n_processes)]
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            label, sep, rest = line.partition(": ")
            if sep and label.strip().isdigit() and int(label) < self.n_processes:
                self.queues[int(label)].put(rest)
        for lines in self.queues:
            lines.put(None)

    def tail(self, index: int) -> str:
        """The last line srun wrote about task ``index`` (its stderr, or srun's own report)."""
        lines = self.stderr_lines()
        own = [ln for ln in lines if ln.startswith(f"{index}: ") or f"task {index}:" in ln]
        return (own or lines or [""])[-1][:300]

    def death(self, index: int):
        from kbench.running.worker import Death

        return Death(self.final_returncode(), self.killed_by_us, False, self.tail(index))

    def kill(self) -> None:
        """End the step and every task, on every node, then srun."""
        if self.proc.poll() is None:
            self.killed_by_us = True
            try:
                steps = subprocess.run(["squeue", "--steps", "--noheader", "--format=%i %j",
                                        f"--jobs={os.environ.get('SLURM_JOB_ID', '')}"],
                                       capture_output=True, text=True, timeout=30).stdout.split()
                ids = [step for step, name in zip(steps[::2], steps[1::2]) if name == self.name]
                if ids:
                    subprocess.run(["scancel", "--quiet", *ids], capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill_session()


class SrunTask:
    """Task ``index`` of an ``SrunStep``, with the interface of a ``Worker`` that ``ProcessGroup``
    uses. The step's stdin is broadcast: only task 0 writes a message (once for all)."""

    def __init__(self, step: SrunStep, index: int):
        self.step = step
        self.index = index
        self.ready: dict | None = None

    @property
    def alive(self) -> bool:
        return self.step.alive

    def send(self, payload: dict) -> bool:
        return self.step.send(payload) if self.index == 0 else self.step.alive

    def receive(self, timeout_s: float):
        from kbench.running.worker import next_message

        return next_message(self.step.queues[self.index], timeout_s)

    def death(self):
        return self.step.death(self.index)

    def close_input(self) -> None:
        self.step.close_input()

    def kill(self) -> None:
        self.step.kill()

    def stop(self) -> None:
        if self.index == 0:
            self.step.stop()


def _term_with_parent() -> None:
    """In srun, before it starts: SIGTERM when the sweep dies (srun then ends its step)."""
    import ctypes
    import signal

    from kbench.running.worker import PR_SET_PDEATHSIG

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Profiler:
    """TF-profile lookups: the cache, else a pooled TensorFlow worker (module docstring)."""

    def __init__(self, cache_dir: str | Path | None, pool: WorkerPool = POOL):
        self.cache = ProfileCache(cache_dir) if cache_dir else None
        self.pool = pool
        self.available = BACKENDS["tensorflow"].available()
        self.memo: dict[str, dict] = {}
        self.computed = 0

    def known(self, request: ModelRequest) -> dict | None:
        """The profile already at hand (this run's, or the cache's), or None."""
        payload = request.to_payload()
        ident = json.dumps(payload, sort_keys=True)
        if ident not in self.memo:
            cached = self.cache.load(payload) if self.cache else {}
            if not cached:
                return None
            self.memo[ident] = cached
        return self.memo[ident]

    def can_profile(self, cfg: Config) -> bool:
        """Whether ``cfg``'s worker can profile the model it measures: a TensorFlow float32
        configuration on one device, in one process (the profile is a float32 TF graph)."""
        return (self.available and BACKENDS[cfg.backend].profiles and cfg.precision == "float32"
                and cfg.n_devices == 1 and cfg.n_processes == 1)

    def get(self, request: ModelRequest, deadline_s: float, computed: dict | None = None) -> dict:
        """The profile of ``request``: known, else ``computed`` (a worker's, of the model it
        measured), else computed now by a pooled TensorFlow worker within ``deadline_s``
        ({} when it cannot be). What is computed goes into the cache."""
        known = self.known(request)
        if known is not None:
            return known
        payload = request.to_payload()
        result = computed or (self._run(payload, deadline_s) if self.available and deadline_s > 0 else {})
        if result:
            self.computed += 1
            if self.cache:
                try:
                    self.cache.store(payload, result)
                except UsageError as exc:  # a cache that cannot be written only costs time
                    print(f"kbench: warning: profile cache not written: {exc}", file=sys.stderr)
        self.memo[json.dumps(payload, sort_keys=True)] = result
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
