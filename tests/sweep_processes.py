"""Running a real sweep process from a test and killing it at a chosen moment."""

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
