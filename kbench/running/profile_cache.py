"""The sweep's cache of TensorFlow profiles (params, MACs, FLOPs per model request).

A cached count is only as good as the code that produced it, so an entry is keyed on
everything that can change the count:

* ``PROFILE_SCHEMA`` (bump it when the cached fields or their meaning change),
* the kbench and Keras versions,
* a digest of the source of ``architectures/`` (every file: builders, layers, reference data)
  and of the counting modules (``COUNTING_SOURCES``),
* the model request itself (name, ``(h, w, c)``, classes, variant).

Editing a builder or a counting rule therefore changes the key, and the old entry is simply
never read again. The TensorFlow version is recorded in each entry and checked where
TensorFlow is installed (an entry written under another TF version is a miss). A machine
without TensorFlow (the GPU hosts) cannot profile at all, so there it accepts an entry from
any TF version: that is how the GPU path gets FLOPs, from a cache filled on a TensorFlow
machine with ``kbench sweep ... --profile-only`` and carried along (README, "GPU").
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

from kbench.common import env
from kbench.common.csvio import write_text_atomic
from kbench.common.sources import package_dir, source_digest

PROFILE_SCHEMA = 2
FIELDS = ("params_trainable", "macs", "flops_tf")

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
# What a profile's numbers depend on besides the request: the whole counting layer.
COUNTING_SOURCES = ("counting",)


def counting_roots() -> list[Path]:
    """``architectures/`` and the counting modules of kbench."""
    return [package_dir("architectures")] + [_PACKAGE_DIR / name for name in COUNTING_SOURCES]


@functools.lru_cache(maxsize=None)
def counting_source_digest() -> str:
    """``source_digest(counting_roots())``, computed once per process."""
    return source_digest(counting_roots())


def cache_key(request_payload: dict) -> str:
    from kbench.version import __version__

    ident = {"schema": PROFILE_SCHEMA, "kbench": __version__, "keras": env.package_version("keras"),
             "source": counting_source_digest(), "request": request_payload}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


class ProfileCache:
    """JSON files, one per request, in ``directory`` (created on the first store)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, request_payload: dict) -> Path:
        h, w, c = request_payload["input_shape"]
        # A user's model is named by a path or module:factory: keep the file name one safe word.
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request_payload["model"]).strip("._")[-80:]
        return self.directory / f"{stem}-{h}x{w}x{c}-{cache_key(request_payload)}.json"

    def load(self, request_payload: dict) -> dict:
        """The cached fields, or {} when there is no valid entry for this code and request."""
        path = self.path(request_payload)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(entry, dict) or entry.get("schema") != PROFILE_SCHEMA:
            return {}
        local_tf = env.package_version("tensorflow")
        if local_tf and entry.get("tf_version") != local_tf:
            return {}  # this machine can profile, under another TF version: recount
        if any(not isinstance(entry.get(k), int) for k in FIELDS):
            return {}
        return {k: entry[k] for k in FIELDS}

    def store(self, request_payload: dict, profile: dict) -> None:
        entry = {"schema": PROFILE_SCHEMA, "request": request_payload,
                 "tf_version": env.package_version("tensorflow"), "keras_version": env.package_version("keras"),
                 "source_digest": counting_source_digest(), **{k: profile[k] for k in FIELDS}}
        write_text_atomic(self.path(request_payload), json.dumps(entry, sort_keys=True) + "\n")
