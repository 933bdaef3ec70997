"""The zoo's index (``kbench/models/zoo_index.json``): the registry's metadata written once, so
that ``kbench list`` and ``kbench conventions`` import no Keras. The registry stays the source of
truth: the committed index must be what the registry generates now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kbench.models import registry, zoo_index

REPO = Path(__file__).resolve().parent.parent


def test_committed_index_is_what_the_registry_generates():
    """Regenerated from the registry (as torchvision recomputes its weights' meta in a test): after
    an edit of the zoo, ``python -m kbench.models.zoo_index`` writes it again."""
    assert zoo_index.INDEX_PATH.read_text(encoding="utf-8") == zoo_index.render(zoo_index.build()), \
        "kbench/models/zoo_index.json is stale: run python -m kbench.models.zoo_index"


def test_index_lists_every_registered_model_with_its_metadata():
    listed = zoo_index.load()
    assert [entry["name"] for entry in listed] == registry.list_models()
    assert listed[0] == json.loads(json.dumps(registry.get_spec(listed[0]["name"]).metadata()))


def test_a_stale_index_is_not_used(tmp_path, monkeypatch):
    """An index whose source digest is not the zoo's (an edit since it was written) is ignored:
    the registry is read instead, never a stale figure."""
    stale = json.loads(zoo_index.INDEX_PATH.read_text(encoding="utf-8"))
    stale["source_digest"] = "0" * 16
    stale["models"] = stale["models"][:1]
    path = tmp_path / "zoo_index.json"
    path.write_text(json.dumps(stale))
    monkeypatch.setattr(zoo_index, "INDEX_PATH", path)
    assert len(zoo_index.load()) == len(registry.list_models()) > 1


def _modules_after(command: str) -> set[str]:
    code = ("import sys, contextlib, io\nfrom kbench.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main({command.split()!r}) == 0\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('keras', 'tensorflow', 'jax', 'torch', 'architectures'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


def test_list_and_conventions_import_no_framework():
    assert _modules_after("list --format json") == set()
    assert _modules_after("conventions") == set()
    assert _modules_after("list --family resnet --format csv") == set()
