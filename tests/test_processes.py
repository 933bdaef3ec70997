"""Processes: workers die with their sweep (SIGKILL, SIGTERM, SIGHUP of the parent), SIGTERM and
SIGHUP stop a sweep like Ctrl-C (exit 128 + n, file intact), a worker killed from outside is
retried once in a fresh worker and not called ``oom``, and a signal swallowed by a garbage
collection callback is not lost. The fault-injection hook stands in for real work."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
BASE = ["--models", "lenet5", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer", "--no-jit",
        "--warmup", "0", "--iters", "1", "--no-progress"]


@pytest.fixture(scope="module")
def profile_cache(tmp_path_factory):
    """A profile cache holding lenet5 at 32x32 (numbers of architectures/lenet.py), so that no
    TensorFlow profiling worker is started: these tests are about the measuring workers."""
    from kbench.models import registry
    from kbench.running.profile_cache import ProfileCache

    directory = tmp_path_factory.mktemp("profiles")
    ProfileCache(directory).store(registry.resolve("lenet5", (32, 32)).to_payload(),
                                  {"params_trainable": 61706, "macs": 416520, "flops_tf": 846346})
    return str(directory)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead (unreaped by init)
    except OSError:
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _hanging_workers(parent: int) -> list[int]:
    """Measuring workers of ``parent`` that reached the injected hang (it says so on stderr)."""
    hanging = []
    for pid in _children(parent):
        if "kbench.running.worker" not in _cmdline(pid):
            continue
        try:
            with open(f"/proc/{pid}/fd/2", errors="replace") as f:
                if "simulated hang" in f.read():
                    hanging.append(pid)
        except OSError:
            continue
    return hanging


def _wait(predicate, timeout_s: float, step_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


def test_workers_die_with_their_parent(tmp_path, profile_cache):
    """Three sweeps, each with a worker stuck in a configuration; the parents are killed with
    SIGKILL, SIGTERM and SIGHUP: no worker survives, and the caught signals exit 128 + n."""
    env = {**os.environ, "KBENCH_FAULT_INJECT": "lenet5:1:infer=hang", "PYTHONPATH": str(ROOT)}
    sweeps = {}
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP):
        out = tmp_path / f"{sig.name}.csv"
        proc = subprocess.Popen([sys.executable, "-m", "kbench", "sweep", *BASE, "--timeout", "600",
                                 "--profile-cache", profile_cache, "--out", str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        sweeps[sig] = (proc, out)
    try:
        workers = {}
        for sig, (proc, _) in sweeps.items():
            workers[sig] = _wait(lambda: _hanging_workers(proc.pid), 300)
            assert workers[sig], f"no worker reached the hang under the {sig.name} sweep: {proc.poll()}"
        for sig, (proc, _) in sweeps.items():
            os.kill(proc.pid, sig)  # the parent only, as `kill` from another terminal would
        for sig, (proc, out) in sweeps.items():
            code = proc.wait(timeout=60)
            err = proc.stderr.read()
            _wait(lambda: not any(_alive(p) for p in workers[sig]), 15)
            assert not any(_alive(p) for p in workers[sig]), f"a worker outlived its {sig.name}-killed parent"
            if sig == signal.SIGKILL:
                assert code == -signal.SIGKILL
            else:
                assert code == 128 + sig, err
                lines = err.strip().splitlines()
                assert len(lines) == 1 and f"interrupted by {sig.name}" in lines[0] and "Traceback" not in err
            header = out.read_text()
            assert header.count("\n") == 1 and header.startswith("run_id,")  # header only, intact
    finally:
        for proc, _ in sweeps.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_worker_killed_from_outside_is_retried_not_oom(tmp_path, profile_cache, monkeypatch):
    """kill -9 of a worker in flight: the configuration runs again in a fresh worker (which here
    hangs again and times out), and the row does not say oom."""
    import pandas as pd

    monkeypatch.setenv("KBENCH_FAULT_INJECT", "lenet5:1:infer=hang")
    seen: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set():
            for pid in _hanging_workers(os.getpid()):
                if pid not in seen:
                    seen.append(pid)
                    if len(seen) == 1:
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = tmp_path / "killed.csv"
    try:
        code = main(["sweep", *BASE, "--timeout", "3", "--profile-cache", profile_cache, "--out", str(out)])
    finally:
        stop.set()
        thread.join()
    assert code == 0
    df = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert len(df) == 1
    assert df["status"][0] == "timeout", df["error"][0]
    assert "second attempt" in df["error"][0] and "killed by SIGKILL" in df["error"][0]
    assert len(seen) == 2  # the killed worker and the fresh one


def test_worker_killed_twice_at_one_configuration_is_oom(tmp_path, profile_cache, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("KBENCH_FAULT_INJECT", "lenet5:1:infer=kill")
    out = tmp_path / "twice.csv"
    assert main(["sweep", *BASE, "--batch-sizes", "1,2", "--timeout", "60", "--profile-cache", profile_cache,
                 "--out", str(out)]) == 0
    df = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert list(df["status"]) == ["oom", "skipped"]
    assert "twice" in df["error"][0]


def test_a_signal_swallowed_in_a_gc_callback_is_raised_at_the_next_checkpoint():
    from kbench.common import interrupts

    assert interrupts.install()
    fired = []

    def callback(phase, info):
        if phase == "start" and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGTERM)  # its exception is raised here, and swallowed
            time.sleep(0.01)

    gc.callbacks.append(callback)
    try:
        gc.collect()
        assert fired
        with pytest.raises(interrupts.Interrupted) as info:
            interrupts.checkpoint()
        assert info.value.signum == signal.SIGTERM and interrupts.exit_code(info.value) == 143
    finally:
        gc.callbacks.remove(callback)
        interrupts.restore()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def _catches(pid: int, sig: int) -> bool:
    """Whether ``pid`` has a handler for ``sig`` (SigCgt in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask >> (sig - 1) & 1)


def test_ctrl_c_during_start_up_is_never_ignored(tmp_path, profile_cache):
    """SIGINT at several moments of start-up (imports, backend set-up, worker launch): every sweep
    stops with exit 130 and one line, none runs on. The configuration hangs, so a sweep that
    ignored the signal could only end by the test's timeout, never pass by finishing early."""
    env = {**os.environ, "KBENCH_FAULT_INJECT": "lenet5:1:infer=hang", "PYTHONPATH": str(ROOT)}
    delays = (0.0, 0.5, 2.0)  # JAX start-up is where a gc callback once swallowed the signal
    sweeps = []
    for i, delay in enumerate(delays):
        proc = subprocess.Popen([sys.executable, "-m", "kbench", "sweep", *BASE, "--backend", "jax",
                                 "--timeout", "600", "--profile-cache", profile_cache,
                                 "--out", str(tmp_path / f"{i}.csv")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        sweeps.append((delay, proc))
    try:
        # From the moment kbench's handlers are in place (SIGTERM caught: Python itself only
        # catches SIGINT); before that, Python's own KeyboardInterrupt is the expected behaviour.
        for _, proc in sweeps:
            assert _wait(lambda: _catches(proc.pid, signal.SIGTERM), 120), "kbench never installed its handlers"
        started = time.monotonic()
        for delay, proc in sweeps:
            time.sleep(max(0.0, started + delay - time.monotonic()))
            os.kill(proc.pid, signal.SIGINT)
        for delay, proc in sweeps:
            code = proc.wait(timeout=120)
            err = proc.stderr.read()
            assert code == 130, f"SIGINT {delay} s into start-up: exit {code}: {err}"
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("kbench: interrupted by SIGINT"), err
    finally:
        for _, proc in sweeps:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for i in range(len(delays)):
        out = tmp_path / f"{i}.csv"
        assert not out.exists() or out.read_text().count("\n") <= 1  # no row, at most the header


def test_the_shard_cost_counter_dies_with_its_sweep(tmp_path):
    """``--shard`` counts the configurations' costs in a helper process (``python -m
    kbench.running.shard``), here made to hang: SIGKILL of the sweep, at a moment it cannot
    handle, ends the helper too (no process left with its 1800 s limit)."""
    env = {**os.environ, "KBENCH_FAULT_INJECT": "lenet5:*:count=hang", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kbench", "sweep", *BASE, "--shard", "1/2",
                             "--profile-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "shard.csv")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    counters: list[int] = []
    try:
        counters = _wait(lambda: [p for p in _children(proc.pid) if "kbench.running.shard" in _cmdline(p)], 120)
        assert counters, f"no cost counter started (sweep exit {proc.poll()})"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        _wait(lambda: not any(_alive(p) for p in counters), 15)
        assert not any(_alive(p) for p in counters), "the cost counter outlived its SIGKILLed sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in counters:  # a failed test leaves nothing running either
            if _alive(pid) and "kbench.running.shard" in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)
    assert not (tmp_path / "shard.csv").exists()  # killed before any row: not even a header
