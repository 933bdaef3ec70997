"""Running a real sweep process from a test and killing it at a chosen moment; finding a sweep's
worker processes in /proc; a profile cache that spares the tests a TensorFlow profiling worker."""

import os
import signal
import subprocess
import sys
import time

import pytest


def kill_sweep_after_first_row(args, out, timeout_s: float):
    """Run ``kbench sweep ARGS`` in its own process group and SIGKILL the group (the sweep and its
    worker, as a hard kill would) once ``out`` holds the header and one finished row."""
    proc = subprocess.Popen([sys.executable, "-m", "kbench", "sweep", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= 2:  # header + one finished row
                return
            if proc.poll() is not None:
                pytest.fail(f"sweep exited early with {proc.returncode}")
            time.sleep(0.05)
        pytest.fail(f"no row within {timeout_s:g} s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


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


def children(pid: int) -> list[int]:
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


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead (unreaped by init)
    except OSError:
        return False


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def hanging_workers(parent: int) -> list[int]:
    """Measuring workers of ``parent`` that reached the injected hang (it says so on stderr)."""
    hanging = []
    for pid in children(parent):
        if "kbench.running.worker" not in cmdline(pid):
            continue
        try:
            with open(f"/proc/{pid}/fd/2", errors="replace") as f:
                if "simulated hang" in f.read():
                    hanging.append(pid)
        except OSError:
            continue
    return hanging
