"""Model selectors: the one parser of "which models" for every command and the Python API.

A selector is a comma-separated list of items (as timm's ``--model``/``--model-list``):

* a registered name (``resnet50``), ``all``, or ``family:F``;
* a glob pattern over the registered names (``'resnet*'``, ``'shufflenet_v?_*'``);
* ``@FILE``: the items of a text file, one per line, ``#`` starting a comment;
* a user's model: a saved ``PATH.keras`` or a ``package.module:factory`` (``kbench.models.registry``).

Items expand in order, duplicates dropped. Anything that names no model (an unknown name, a
pattern that matches nothing, a missing file) is a ``UsageError`` naming it (exit 2).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Iterable, Mapping

from kbench.models import registry
from kbench.errors import UsageError

GLOB_CHARS = frozenset("*?[")


def expand(selector: str | Iterable[str]) -> list[str]:
    """Model names and user selectors, in order and without duplicates."""
    items = _split(selector) if isinstance(selector, str) else [str(s).strip() for s in selector]
    if not [item for item in items if item]:
        raise UsageError(f"no model named in {selector!r}")
    names: list[str] = []
    for item in items:
        for name in _expand_item(item, seen_files=()):
            if name not in names:
                names.append(name)
    return names


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _expand_item(item: str, seen_files: tuple) -> list[str]:
    if item.startswith("@"):
        return _expand_file(item[1:], seen_files)
    if registry.is_user_selector(item):
        return [item]
    if item == "all":
        return registry.list_models()
    if item.startswith("family:"):
        return registry.list_models(item.split(":", 1)[1])
    if GLOB_CHARS & set(item):
        matched = fnmatch.filter(registry.list_models(), item)
        if not matched:
            raise UsageError(f"pattern {item!r} matches no registered model; run 'kbench list' for the names")
        return matched
    registry.known_spec(item)  # UnknownModelError with close matches
    return [item]


def _expand_file(path: str, seen_files: tuple) -> list[str]:
    if not path:
        raise UsageError("'@' must be followed by a file of model names (one per line)")
    if path in seen_files:
        raise UsageError(f"model list {path!r} includes itself")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read model list @{path}: {reason}") from None
    items = [item for line in text.splitlines() for item in _split(line.split("#", 1)[0])]
    if not items:
        raise UsageError(f"model list @{path} names no model")
    return [name for item in items for name in _expand_item(item, (*seen_files, path))]


def resolve_requests(selector, input_shape=None, num_classes: int | None = None,
                     variant: Mapping[str, Any] | None = None, *, imports=()) -> list:
    """Expand ``selector`` and resolve each model (``registry.resolve``) with the same options."""
    return [registry.resolve(name, input_shape, num_classes, variant, imports=imports) for name in expand(selector)]
