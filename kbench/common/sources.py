"""Digests of source trees: what a cached or generated result was made from, so that any edit is seen."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable


def _source_files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            yield path


def source_digest(roots: Iterable[Path]) -> str:
    """SHA-256 over the relative names and bytes of every file under ``roots`` (files or
    directories; missing ones are skipped). Any edit, addition, removal or rename changes it."""
    digest = hashlib.sha256()
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for path in _source_files(root):
            name = path.relative_to(root.parent).as_posix()
            data = path.read_bytes()
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def package_dir(name: str) -> Path:
    """The directory of an importable package, found without importing it (``architectures``
    would import Keras)."""
    import importlib.util

    return Path(next(iter(importlib.util.find_spec(name).submodule_search_locations))).resolve()
