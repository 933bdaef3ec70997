"""The zoo's metadata without Keras: ``zoo_index.json``, generated from the registry.

``kbench list`` needs only each model's metadata (``ModelSpec.metadata()``: family, paper,
inputs, published figures), and so do the processes that name, validate and plan models without
building them (a sweep's parent, ``compare``: ``registry.IndexedSpec``), but the registry is filled
by importing ``architectures``, which
imports Keras and its backend (seconds). The index is that metadata written once, with the digest
of the ``architectures/`` source it was generated from. The registry stays the one source of
truth:

* ``load()`` uses the index only while its digest matches the source; after any edit of the zoo
  it reads the registry itself (slower, never stale);
* ``tests/test_zoo_index.py`` regenerates the index and requires the committed file to be equal
  (as torchvision recomputes its weights' meta in a test);
* ``python -m kbench.models.zoo_index`` writes it again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

INDEX_PATH = Path(__file__).with_name("zoo_index.json")


def zoo_digest() -> str:
    """The digest of the ``architectures/`` source (``kbench.common.sources``)."""
    from kbench.common.sources import package_dir, source_digest

    return source_digest([package_dir("architectures")])


def zoo_specs():
    """The registry itself, ``architectures.MODEL_SPECS``: imports the zoo, and Keras with it
    (lazily and quietly; ``kbench.models.registry`` is the one way to query it)."""
    from kbench.common.quiet import quiet_import

    quiet_import("keras")
    return quiet_import("architectures").MODEL_SPECS


def build() -> dict[str, Any]:
    """The index, from the registry (imports the zoo, and Keras)."""
    specs = zoo_specs()
    return {"source_digest": zoo_digest(), "models": [specs[name].metadata() for name in sorted(specs)]}


def render(index: dict[str, Any]) -> str:
    return json.dumps(index, indent=1, sort_keys=True) + "\n"


def load() -> list[dict[str, Any]]:
    """Every registered model's metadata, sorted by name: the index while it matches the zoo's
    source, else the registry's."""
    try:
        index = json.loads(INDEX_PATH.read_text(encoding="utf-8"))
        if index.get("source_digest") == zoo_digest():
            return index["models"]
    except (OSError, ValueError, KeyError):
        pass
    return build()["models"]


def main() -> int:
    from kbench.common.outputs import write_text

    write_text(str(INDEX_PATH), render(build()), "zoo index", overwrite=True)
    print(f"wrote {INDEX_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
