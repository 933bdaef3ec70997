"""The environment of a measurement, recorded in every CSV row.

Everything here is cheap and never imports a framework the caller has not chosen: the
active backend's version is read from the already-imported module or package metadata.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import uuid
from pathlib import Path

ENV_COLUMNS = ("device", "device_kind", "host", "kbench_version", "tf_version", "keras_version",
               "backend_version", "git_commit", "python_version")


def package_version(package: str) -> str:
    """Installed version of ``package`` (or of its ``-cpu`` build, e.g. tensorflow-cpu); '' if absent."""
    for name in (package, f"{package}-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """Commit of the kbench checkout (with '+dirty' if modified); '' outside a git checkout.

    ``KBENCH_GIT_COMMIT`` overrides it, for a copy of the tree whose ``.git`` is absent or not
    the one the files came from (a machine that receives the working tree, not the repository).
    """
    if os.environ.get("KBENCH_GIT_COMMIT"):
        return os.environ["KBENCH_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def backend_name() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def environment(device: str = "cpu", device_kind: str | None = None,
                backend_version: str | None = None) -> dict[str, str]:
    """The environment columns (see ``ENV_COLUMNS``).

    ``backend_version``: ``kbench.running.backends.BACKENDS[name].version()`` of the backend measured;
    by default the version of the package named like ``KERAS_BACKEND`` (each Keras backend's
    name is also its package's name).
    """
    from kbench.version import __version__

    return {
        "device": device,
        "device_kind": device_kind or cpu_name(),
        "host": socket.gethostname(),
        "kbench_version": __version__,
        "tf_version": package_version("tensorflow"),
        "keras_version": package_version("keras"),
        "backend_version": package_version(backend_name()) if backend_version is None else backend_version,
        "git_commit": git_commit(),
        "python_version": platform.python_version(),
    }


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def timestamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

