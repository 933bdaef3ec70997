"""Import frameworks without their start-up chatter on stderr.

TensorFlow's C++ runtime prints oneDNN and absl notices straight to file descriptor 2 at
import time, which no environment variable silences in TF 2.21; they would bury kbench's
one-line messages. We point fd 2 at /dev/null for the duration of the import only.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys


@contextlib.contextmanager
def silenced_stderr_fd():
    if os.environ.get("KBENCH_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _interrupts_not_swallowed():
    """A Ctrl-C that lands in a garbage-collection callback during an import (JAX registers one)
    is "unraisable" and silently dropped, with stderr silenced on top: re-raise it afterwards."""
    swallowed = []
    previous = sys.unraisablehook

    def hook(info):
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
            swallowed.append(info.exc_value)
            return
        previous(info)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        if sys.unraisablehook is hook:
            sys.unraisablehook = previous
    if swallowed:
        raise swallowed[0]


def quiet_import(name: str):
    if name in sys.modules:
        return sys.modules[name]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from kbench.common import interrupts

    with _interrupts_not_swallowed(), silenced_stderr_fd():
        module = importlib.import_module(name)
    interrupts.checkpoint()
    if name in ("tensorflow", "keras") and "tensorflow" in sys.modules:
        sys.modules["tensorflow"].get_logger().setLevel("ERROR")
    return module
