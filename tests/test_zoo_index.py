"""The zoo's index (``kbench/models/zoo_index.json``): the registry's metadata written once, so
that ``kbench list`` and ``kbench conventions`` import no Keras. The registry stays the source of
truth: the committed index must be what the registry generates now."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import kbench
from kbench.models import registry, zoo_index

from fresh_process import REPO, kbench_in_fresh_process


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


def test_an_indexed_spec_answers_as_the_registry_spec():
    """What the index holds equals the registry's fields; anything else is the registry's own."""
    fields = registry.IndexedSpec.FIELDS
    for metadata in zoo_index.load():
        indexed, spec = registry.IndexedSpec(metadata), registry.get_spec(metadata["name"])
        assert [getattr(indexed, f) for f in fields] == [getattr(spec, f) for f in fields]
        assert indexed.builder is spec.builder and indexed.preset is spec.preset


def test_requests_resolved_from_the_index_validate_and_build_as_the_registry(monkeypatch):
    indexed = {m["name"]: registry.IndexedSpec(m) for m in zoo_index.load()}
    monkeypatch.setattr(registry, "_known", lambda: indexed)
    request = registry.resolve("resnet18", (64, 64), 10)
    assert isinstance(request.spec, registry.IndexedSpec) and request.family == "resnet"
    monkeypatch.undo()
    assert request.build().count_params() == kbench.build("resnet18", (64, 64), 10).count_params() == 11_191_242  # (Keras: BN statistics included)
    monkeypatch.setattr(registry, "_known", lambda: indexed)
    with pytest.raises(kbench.InputSizeError, match="too small for resnet18"):
        registry.resolve("resnet18", (8, 8))
    with pytest.raises(kbench.UnknownModelError, match="did you mean 'resnet18'"):
        registry.resolve("resnet19")
    with pytest.raises(kbench.UsageError, match="unknown option 'width' for resnet18"):
        registry.resolve("resnet18", variant={"width": 2})


def _frameworks_after(argv: list[str], code: int = 0, cwd: Path = REPO) -> set[str]:
    """The frameworks (and the zoo) imported by ``kbench ARGV`` run in a fresh process."""
    run = kbench_in_fresh_process((argv, cwd), clean_env=True)
    assert run.results[0][0] == code, run.results[0][2][-2000:]
    return run.loaded


def test_list_and_conventions_import_no_framework():
    assert _frameworks_after(["list", "--format", "json"]) == set()
    assert _frameworks_after(["conventions"]) == set()
    assert _frameworks_after(["list", "--family", "resnet", "--format", "csv"]) == set()


def test_a_sweeps_parent_and_its_bad_input_import_no_framework(tmp_path):
    """A sweep's parent names, validates and plans the models from the index and leaves building
    to its workers: a usage error comes in a fraction of a second, and a sweep that measures
    (here lenet5 in a worker) never loads Keras in the parent."""
    sweep = ["sweep", "lenet5,resnet18", "--input-size", "32", "--out", str(tmp_path / "s.csv")]
    assert _frameworks_after([*sweep, "--timeout", "inf"], code=2) == set()
    assert _frameworks_after(["sweep", "lenet5", "--batch-sizes", "1", "--modes", "infer", "--no-jit", "--iters", "1",
                           "--rounds", "2", "--warmup", "1", "--no-progress", "--out", str(tmp_path / "s.csv")],
                          cwd=tmp_path) == set()
    assert len(pd.read_csv(tmp_path / "s.csv")) == 1
