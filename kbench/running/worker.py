"""Worker subprocesses and their line protocol, both ends.

The sweep (``kbench.running.sweep``) starts ``python -m kbench.running.worker`` per backend and
device count (``KERAS_BACKEND`` set in its environment) and keeps it warm in a pool (``WorkerPool``)
across models, and talks to it over pipes, one message per line: ``TAG {json}``. A worker
announces ``READY`` with its device, then reads one JSON request per line: a configuration, which
it answers with ``START`` when it begins and ``RESULT {...}`` when done (then, when the request
has ``PROFILE_AFTER`` and the result is ``ok``, ``PROFILE`` of the model it measured), or a
``{"op": PROFILE_OP, "request": ...}`` (TensorFlow), answered with ``PROFILE``.
A worker measuring on n > 1 devices (``--devices``) gets the backend's environment for them
(``Backend.worker_env``) and ``KBENCH_N_DEVICES``, and prepares them (``Backend.prepare_devices``)
before its framework starts. A worker that is one of a process group (``--processes``, started by
``kbench.running.supervisor.ProcessGroup``, never pooled) gets its place in it (``Membership``:
``KBENCH_N_PROCESSES``, ``KBENCH_PROCESS_ID``, ``KBENCH_COORDINATOR``) and joins the group's job
(``Backend.join_processes``) before it announces ``READY``; a task of an srun step
(``kbench.running.supervisor.SrunStep``) gets no id and no coordinator (Slurm's variables give
them), and no parent pid: it dies with its node's ``slurmstepd``, which Slurm ends with the step.
Anything libraries print goes to stderr (the protocol has a private copy of the original
stdout), so stray output can never be mistaken for a message.

Testing hook: ``KBENCH_FAULT_INJECT="model:batch:mode=kind[;...]"`` makes the worker fail the
matching configuration on purpose after it has started it; ``kind`` is ``oom`` (a simulated
out-of-memory exception), ``error`` (a RuntimeError), ``crash`` (the process exits at once,
as a segfault would), ``kill`` (the worker sends itself SIGKILL, as ``kill -9`` or the kernel's
OOM killer would) or ``hang`` (prints "simulated hang" on its stderr, then sleeps forever, for
the sweep's timeout). ``*`` matches any batch or mode. It exists for the tests; never set it in
a real run.

**A worker dies with its parent.** The parent is a sweep that may be killed by anything
(``kill -9`` included), and a worker runs in its own session (so a terminal's Ctrl-C reaches
only the parent, which stops it cleanly). On Linux the worker asks the kernel for SIGKILL when
its parent dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a watchdog thread exits the
process once its parent is gone (the parent's pid is passed in ``KBENCH_PARENT_PID``); EOF on
stdin ends it between configurations.

**Death of a worker.** ``Worker.death()`` says why a worker's stream ended: its exit code or
signal, and whether the kernel's OOM killer acted (``oom_kill`` in the cgroup's
``memory.events``/``memory.oom_control`` went up while it ran). A SIGKILL without that evidence
is *not* called ``oom``: the sweep retries the configuration once in a fresh worker, and only a
second SIGKILL at the same configuration is taken as running out of memory.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

READY, START, RESULT, PROFILE = "READY", "START", "RESULT", "PROFILE"
TAGS = (READY, START, RESULT, PROFILE)
PROFILE_OP = "profile"
# A ready worker answers a configuration with START at once; the configuration's own timeout counts
# from there, and this much is allowed before it (a loaded machine, a process group's members).
START_TIMEOUT_S = 60.0
PROFILE_AFTER = "profile_after"  # in a measure request: after an ok RESULT, also PROFILE the measured model
# What a worker can see of its parent's environment: a worker is reused only under the same values.
WORKER_ENV_PREFIXES = ("KBENCH_", "KERAS_", "TF_", "XLA_", "JAX_", "CUDA_", "PYTHON", "OMP_", "MKL_")
WORKER_ENV_PRIVATE = ("KBENCH_PARENT_PID",)
MAX_IDLE_WORKERS = 3
FAULT_ENV = "KBENCH_FAULT_INJECT"
FAULT_KINDS = ("oom", "error", "crash", "hang", "kill")
PARENT_ENV = "KBENCH_PARENT_PID"
DEVICES_ENV = "KBENCH_N_DEVICES"  # a worker measuring on n devices prepares them before its framework starts
# A worker that is one of a process group (``--processes``) joins its job before its framework starts.
PROCESSES_ENV, PROCESS_ID_ENV = "KBENCH_N_PROCESSES", "KBENCH_PROCESS_ID"
COORDINATOR_ENV, JOIN_TIMEOUT_ENV = "KBENCH_COORDINATOR", "KBENCH_JOIN_TIMEOUT_S"
PR_SET_PDEATHSIG = 1


# ----------------------------------------------------------------------------- fault injection

def parse_faults(text: str | None) -> list[tuple[str, str, str, str]]:
    """``"lenet5:2:infer=oom;*:*:train=hang"`` -> [(model, batch, mode, kind), ...]."""
    faults = []
    for item in (text or "").replace(",", ";").split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, kind = item.partition("=")
        parts = key.split(":")
        if len(parts) != 3 or kind not in FAULT_KINDS:
            raise ValueError(f"{FAULT_ENV} entry {item!r} must look like model:batch:mode={'|'.join(FAULT_KINDS)}")
        faults.append((parts[0], parts[1], parts[2], kind))
    return faults


def fault_for(cfg: dict, faults) -> str | None:
    """The fault kind injected for ``cfg`` (``{"model", "batch_size", "mode"}``), or None."""
    for model, batch, mode, kind in faults:
        if model in ("*", cfg["model"]) and batch in ("*", str(cfg["batch_size"])) and mode in ("*", cfg["mode"]):
            return kind
    return None


class SimulatedOOM(MemoryError):
    pass


def inject_fault(cfg: dict, faults) -> None:
    """Fail ``cfg`` the way its matching fault says (no-op when none matches)."""
    kind = fault_for({"model": cfg["request"]["model"], "batch_size": cfg["batch_size"], "mode": cfg["mode"]},
                     faults)
    if kind == "crash":
        sys.stderr.write(f"kbench: simulated crash ({FAULT_ENV})\n")
        sys.stderr.flush()
        os._exit(134)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        sys.stderr.write(f"kbench: simulated hang ({FAULT_ENV})\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)
    if kind == "oom":
        raise SimulatedOOM(f"simulated out of memory ({FAULT_ENV})")
    if kind == "error":
        raise RuntimeError(f"simulated error ({FAULT_ENV})")


# ----------------------------------------------------------------------------- the protocol

def format_message(tag: str, payload: dict) -> str:
    return f"{tag} {json.dumps(payload, default=float)}\n"


def parse_message(line: str) -> tuple[str, dict] | None:
    """``(tag, payload)`` for a protocol line; None for anything else (ignored)."""
    tag, _, rest = line.strip().partition(" ")
    if tag not in TAGS:
        return None
    try:
        return tag, json.loads(rest or "{}")
    except ValueError:
        return None


# ----------------------------------------------------------------------------- parent side

def worker_identity(backend: str, n_devices: int = 1) -> tuple:
    """What makes two workers interchangeable: the backend, the device count, and every part of
    the parent's environment a worker can see (``WORKER_ENV_PREFIXES``, the working directory)."""
    visible = tuple(sorted((k, v) for k, v in os.environ.items()
                           if k.startswith(WORKER_ENV_PREFIXES) and k not in WORKER_ENV_PRIVATE))
    return backend, int(n_devices), os.getcwd(), sys.executable, visible


@dataclasses.dataclass(frozen=True)
class Membership:
    """A worker's place in a process group: process ``process_id`` of ``n_processes``, the job's
    coordinator (``host:port``) and how long it may take to form (whole seconds). No coordinator
    and no id: the cluster's launcher (``srun``) tells each process its id and the coordinator."""

    n_processes: int
    process_id: int | None
    coordinator: str
    join_timeout_s: int

    def env(self) -> dict[str, str]:
        placed = {} if self.process_id is None else {PROCESS_ID_ENV: str(self.process_id)}
        return {PROCESSES_ENV: str(self.n_processes), COORDINATOR_ENV: self.coordinator,
                JOIN_TIMEOUT_ENV: str(self.join_timeout_s), **placed}


def worker_environment(backend: str, n_devices: int = 1, member: Membership | None = None,
                       parent: int | None = None) -> dict[str, str]:
    """The environment of a worker measuring on ``n_devices`` (its own share), as process ``member``
    of a group, whose parent (it dies with it) is ``parent`` (default: this process; 0: none given,
    the worker's own parent process, e.g. Slurm's ``slurmstepd``)."""
    from kbench.running.backends import BACKENDS

    child_env = dict(os.environ)
    if n_devices > 1:  # set before the worker's framework starts (kbench.running.backends.DataParallel)
        child_env.update(BACKENDS[backend].worker_env(n_devices))
        child_env[DEVICES_ENV] = str(n_devices)
    if member is not None:
        child_env.update(member.env())
    child_env["KERAS_BACKEND"] = backend
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    child_env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: peak memory means something
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.pop(PARENT_ENV, None)
    if parent != 0:
        child_env[PARENT_ENV] = str(parent or os.getpid())
    return child_env


def next_message(lines: queue.Queue, timeout_s: float) -> tuple[str | None, dict]:
    """The next protocol message from a queue of a worker's lines (None: its stream ended);
    (None, {}) on timeout, ("EOF", {}) when the stream ended. A signal the parent received
    meanwhile is raised here (``interrupts.checkpoint``)."""
    from kbench.common import interrupts

    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        interrupts.checkpoint()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, {}
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if line is None:
            return "EOF", {}
        message = parse_message(line)
        if message is not None:
            return message


class PipedProcess:
    """A subprocess (``proc``) that reads the line protocol on its stdin, its stderr kept in
    ``stderr_file``; ``kill()`` ends it by force."""

    proc: subprocess.Popen
    stderr_file: Any

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, payload: dict) -> bool:
        """Send one configuration; False when the process is already gone (a broken pipe)."""
        try:
            self.proc.stdin.write(json.dumps(payload) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def close_input(self) -> None:
        """EOF on its stdin: a worker ends after the configuration in hand."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stderr_lines(self) -> list[str]:
        """The non-empty lines of its stderr so far, stripped."""
        try:
            self.stderr_file.seek(0)
            return [ln.strip() for ln in self.stderr_file.read().splitlines() if ln.strip()]
        except (OSError, ValueError):
            return []

    def final_returncode(self) -> int | None:
        """Its exit status, once its stream has ended: killed if it has not exited within 10 s."""
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        raise NotImplementedError

    def kill_session(self) -> None:
        """SIGKILL to its session (it was started in one of its own), then reap it (up to 10 s)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """EOF on its stdin, up to 30 s to end, else ``kill()``; its stderr file closed."""
        self.close_input()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.stderr_file.close()


class Worker(PipedProcess):
    """A ``python -m kbench.running.worker`` subprocess speaking the line protocol. ``ready``
    holds its ``READY`` message once ``wait_ready`` has seen it. ``n_devices``: the devices this
    process sees; ``member``: its place in a process group (never pooled)."""

    def __init__(self, backend: str, n_devices: int = 1, member: Membership | None = None):
        self.backend = backend
        self.n_devices = int(n_devices)
        self.identity = worker_identity(backend, n_devices)
        self.ready: dict | None = None
        self.stderr_file = tempfile.TemporaryFile(mode="w+")
        self.killed_by_us = False
        self.oom_kills_before = oom_kill_count()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kbench.running.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr_file, env=worker_environment(backend, n_devices, member), text=True, bufsize=1,
            start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout_s: float) -> tuple[str | None, dict]:
        """The ``READY`` message (kept in ``ready``), or what came instead (``receive``)."""
        if self.ready is not None:
            return READY, self.ready
        tag, info = self.receive(timeout_s)
        if tag == READY:
            self.ready = info
        return tag, info

    def receive(self, timeout_s: float) -> tuple[str | None, dict]:
        """Next protocol message (``next_message``)."""
        return next_message(self.lines, timeout_s)

    def exchange(self, payload: dict, timeout_s: float, start_timeout_s: float = START_TIMEOUT_S) -> tuple[str | None, dict]:
        """Send one configuration and wait for its answer: ``(RESULT, record)``; ``(None, {})``
        when it did not start within ``start_timeout_s`` or end within ``timeout_s`` after it
        started; ``("EOF", {})`` when the worker is gone (``death()`` says why)."""
        if not self.send(payload):
            return "EOF", {}
        tag, result = self.receive(start_timeout_s)
        if tag == START:
            tag, result = self.receive(timeout_s)
        return tag, result

    def stderr_tail(self) -> str:
        lines = self.stderr_lines()
        return lines[-1][:300] if lines else ""

    def death(self) -> "Death":
        """Why the worker's stream ended (see the module docstring)."""
        rc = self.final_returncode()
        after = oom_kill_count()
        oom_evidence = (self.oom_kills_before is not None and after is not None and after > self.oom_kills_before)
        return Death(rc, self.killed_by_us, oom_evidence, self.stderr_tail())

    def kill(self):
        self.killed_by_us = True
        self.kill_session()


class WorkerPool:
    """Warm workers of this process (module docstring): ``acquire`` an idle worker of the same
    identity or start one, ``release`` a worker that finished cleanly (it waits, ready, for the
    next request; beyond ``MAX_IDLE_WORKERS`` the longest idle one is stopped), ``discard`` one
    that did not. ``started`` counts the worker processes started (a test's window on reuse)."""

    def __init__(self, max_idle: int = MAX_IDLE_WORKERS):
        self.max_idle = max_idle
        self.idle: list[Worker] = []
        self.started = 0
        self.lock = threading.Lock()

    def acquire(self, backend: str, n_devices: int = 1) -> Worker:
        identity = worker_identity(backend, n_devices)
        with self.lock:
            for worker in list(self.idle):
                if worker.identity == identity:
                    self.idle.remove(worker)
                    if worker.alive:
                        return worker
                    worker.stop()
            self.started += 1
        return Worker(backend, n_devices)

    def release(self, worker: Worker) -> None:
        if not worker.alive or worker.ready is None:
            self.discard(worker)
            return
        with self.lock:
            self.idle.append(worker)
            surplus = self.idle[:-self.max_idle] if len(self.idle) > self.max_idle else []
            del self.idle[:len(surplus)]
        for old in surplus:
            old.stop()

    @staticmethod
    def discard(worker: Worker, kill: bool = False) -> None:
        if kill:
            worker.kill()
        worker.stop()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for worker in idle:
            worker.stop()


POOL = WorkerPool()
atexit.register(POOL.close)


def oom_kill_count() -> int | None:
    """How many processes the kernel's OOM killer has killed in this process's memory cgroup
    (cgroup v2 ``memory.events`` or v1 ``memory.oom_control``); None where unreadable."""
    candidates = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.strip().split(":", 2)
                if len(parts) == 3 and parts[0] == "0":
                    candidates.append(f"/sys/fs/cgroup{parts[2].rstrip('/')}/memory.events")
                elif len(parts) == 3 and "memory" in parts[1].split(","):
                    candidates.append(f"/sys/fs/cgroup/memory{parts[2].rstrip('/')}/memory.oom_control")
    except OSError:
        pass
    candidates += ["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]
    for path in candidates:
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill" and value.strip().isdigit():
                        return int(value)
        except OSError:
            continue
    return None


@dataclasses.dataclass
class Death:
    """How a worker ended: ``returncode`` (negative: a signal), whether we killed it, whether
    the kernel's OOM killer did, and the last line of its stderr."""

    returncode: int | None
    killed_by_us: bool
    oom_evidence: bool
    tail: str = ""

    @property
    def signal_name(self) -> str | None:
        rc = self.returncode
        if rc is None or rc >= 0:
            return None
        return signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)

    @property
    def killed_from_outside(self) -> bool:
        """SIGKILL that we did not send and the OOM killer is not known to have sent."""
        return self.returncode == -signal.SIGKILL and not self.killed_by_us and not self.oom_evidence

    @property
    def status(self) -> str:
        return "oom" if self.oom_evidence else "error"

    @property
    def message(self) -> str:
        suffix = f": {self.tail}" if self.tail else ""
        if self.oom_evidence:
            return f"worker killed by the kernel's out-of-memory killer (cgroup oom_kill count rose){suffix}"
        if self.signal_name == "SIGKILL" and not self.killed_by_us:
            return f"worker killed by SIGKILL from outside (no out-of-memory evidence){suffix}"
        if self.signal_name:
            return f"worker crashed with signal {self.signal_name}{suffix}"
        return f"worker exited with code {self.returncode}{suffix}"


# ----------------------------------------------------------------------------- worker side

def die_with_parent() -> None:
    """End this worker when its parent dies, even by SIGKILL (see the module docstring)."""
    text = os.environ.get(PARENT_ENV, "")
    parent = int(text) if text.isdigit() else os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.25)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="kbench-parent-watchdog", daemon=True).start()


def _protocol_stream():
    """Keep a private copy of stdout for the protocol; route fd 1 to stderr for everyone else."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    return proto


def _send(proto, tag: str, payload: dict):
    proto.write(format_message(tag, payload))
    proto.flush()


def _requests(stream):
    for line in stream:
        if line.strip():
            yield json.loads(line)


def _profile(request_payload: dict, model=None) -> dict:
    """A ``PROFILE`` answer: the TensorFlow profile's ``PROFILE_FIELDS`` of one model request,
    of ``model`` when given (the request's model, built for a float32 configuration and measured:
    neither its weights' values nor its compiled step change a count)."""
    from kbench.counting.profiling import profile, profile_model
    from kbench.models.registry import ModelRequest
    from kbench.running.timing import one_line

    try:
        request = ModelRequest.from_payload(request_payload)
        record = profile(request) if model is None else profile_model(model, request.input_shape)
        return {"status": "ok", **{k: record.get(k) for k in PROFILE_FIELDS}}
    except Exception as exc:  # noqa: BLE001 - a failed profile is an answer, not a dead worker
        return {"status": "error", "error": one_line(exc)}


PROFILE_FIELDS = ("params_trainable", "macs", "flops_tf")


def join_process_group() -> None:
    """A worker of a process group (``PROCESSES_ENV`` > 1) joins its job, before its framework
    touches a device; one that cannot says why in one line on stderr and exits 1."""
    n_processes = int(os.environ.get(PROCESSES_ENV) or 1)
    if n_processes < 2:
        return
    from kbench.running.backends import get

    # No id given: a task of an srun step (``SLURM_PROCID``), whose framework reads it itself.
    process_id = int(os.environ.get(PROCESS_ID_ENV) or os.environ.get("SLURM_PROCID") or 0)
    try:
        get(os.environ.get("KERAS_BACKEND", "tensorflow")).join_processes(
            n_processes, process_id, os.environ.get(COORDINATOR_ENV, ""), int(os.environ.get(JOIN_TIMEOUT_ENV) or 120),
            int(os.environ.get(DEVICES_ENV) or 1))
    except Exception as exc:  # noqa: BLE001 - the parent reads the reason from stderr
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        sys.stderr.write(f"kbench: process {process_id} of {n_processes} could not join its group: {message}\n")
        sys.stderr.flush()
        os._exit(1)


def worker_main() -> int:
    """Answer requests until stdin closes: measure a configuration (``kbench.running.timing.measure``)
    or profile a model request (TensorFlow only)."""
    die_with_parent()
    proto = _protocol_stream()
    faults = parse_faults(os.environ.get(FAULT_ENV))
    n_devices = int(os.environ.get(DEVICES_ENV) or 1)
    if n_devices > 1:
        from kbench.running.backends import get

        get(os.environ.get("KERAS_BACKEND", "tensorflow")).prepare_devices(n_devices)
    join_process_group()
    from kbench.common.quiet import quiet_import
    from kbench.models.session import own_process

    own_process()
    quiet_import("keras")
    from kbench.running import backends, timing

    backend = backends.active()
    device = backend.detect()
    fresh = backend.fresh_worker_per_config(device["device"])
    timing.cpu_reading()  # where the first configuration's load window may start (LoadWindow)
    _send(proto, READY, {"backend": backend.name, **device, "fresh_worker_per_config": fresh})
    for request in _requests(sys.stdin):
        if request.get("op") == PROFILE_OP:
            _send(proto, PROFILE, _profile(request["request"]))
            continue
        _send(proto, START, {"key": request.get("key")})
        measured = []
        result = timing.measure(request, device, before_build=lambda c: inject_fault(c, faults),
                                keep=measured.append if request.get(PROFILE_AFTER) else None)
        if fresh and result.get("peak_mem_source") == "device_process_peak":
            result["peak_mem_source"] = "device"  # this process measures only this configuration
        result["key"] = request.get("key")
        _send(proto, RESULT, result)
        if measured:  # asked to profile the model it measured (an ok float32 one): no second build
            _send(proto, PROFILE, _profile(request["request"], measured.pop()))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv:
        print("usage: python -m kbench.running.worker (no arguments: requests arrive on stdin, one JSON line each)",
              file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return worker_main()


if __name__ == "__main__":
    sys.exit(main())
