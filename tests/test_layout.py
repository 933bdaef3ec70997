"""The shape of the code base, checked from the source (``ast``, nothing imported).

kbench is a stack of layers; each imports only the layers below it (imports inside functions
and ``importlib`` calls included), so the whole package has no import cycle:

    errors, version  <  common  <  models  <  counting  <  results  <  running  <  nightly  <  papers
                     <  the face and the command line (kbench/__init__, cli, __main__, commands)

``architectures/`` (pure Keras builders) never imports kbench, and only
``kbench/running/backends.py`` branches on a backend's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KBENCH = ROOT / "kbench"
ARCHITECTURES = ROOT / "architectures"

# Bottom to top. A module's layer is its subpackage (kbench.running.sweep -> "running"), or its
# own name for a top-level module.
LAYERS = ("errors", "version", "common", "models", "counting", "results", "running", "nightly", "papers",
          "commands", "cli", "__main__", "kbench")
NEVER = {  # one rule per layer, in words, checked below from LAYERS
    "errors": "errors imports no other part of kbench",
    "version": "version imports no other part of kbench",
    "common": "common (files, validation, environment) knows no model, count, result or run",
    "models": "models (registry, requests, selectors) never counts, reads results or runs anything",
    "counting": "counting never reads results, runs workers or reports",
    "results": "results (the CSV schema, frames, merge, statistics) never runs a model",
    "running": "running (backends, timing, workers, sweeps) never compares nights or reproduces papers",
    "nightly": "nightly (compare, history, report) never reproduces papers or calls the command line",
    "papers": "papers (tables as data, reproduction) never calls the command line",
    "commands": "commands are the edge: nothing below imports them",
    "cli": "cli is the edge",
    "__main__": "__main__ is the edge",
    "kbench": "the package face is the edge",
}
MAX_TOP_LEVEL_MODULES = 8
MIN_SUBPACKAGES = 5
DYNAMIC_IMPORTERS = ("import_module", "quiet_import")  # functions whose literal argument is an import


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def imported_names(path: Path, root: Path = ROOT, modules=None) -> set[str]:
    """Every module an ``import``/``from ... import`` anywhere in the file (function bodies
    included) loads, and every literal ``importlib.import_module("...")``/``quiet_import("...")``.
    ``from a import b`` names ``a.b`` where that is one of ``modules``, else ``a``; without
    ``modules`` it names both."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if modules is None:
                    names.update((target, full))
                else:
                    names.add(full if full in modules else target)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in DYNAMIC_IMPORTERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in source_files(package)}
    return {name: {n for n in imported_names(path, ROOT, modules) if n in modules and n != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "kbench"


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_import_parsing(tmp_path):
    (tmp_path / "pkg").mkdir()
    path = tmp_path / "pkg" / "m.py"
    path.write_text("import os\nimport importlib\nfrom kbench.common import env\nfrom . import sibling\n\n"
                    "def f():\n    from kbench.running.sweep import plan\n"
                    "    importlib.import_module('kbench.counting.macs')\n")
    assert imported_names(path, tmp_path) >= {"pkg", "pkg.sibling", "os", "kbench.common", "kbench.common.env",
                                              "kbench.running.sweep", "kbench.running.sweep.plan",
                                              "kbench.counting.macs"}
    # Knowing the modules: `from kbench.common import env` depends on kbench.common.env.
    known = {"kbench.common", "kbench.common.env", "kbench.running.sweep", "kbench.counting.macs", "pkg",
             "pkg.sibling"}
    assert imported_names(path, tmp_path, known) == {"os", "importlib", "kbench.common.env", "pkg.sibling",
                                                     "kbench.running.sweep", "kbench.counting.macs"}


def test_layer_of():
    assert layer_of("kbench.running.sweep") == "running"
    assert layer_of("kbench.cli") == "cli"
    assert layer_of("kbench") == "kbench"


def test_every_module_belongs_to_a_layer():
    unknown = sorted({layer_of(name) for name in import_graph(KBENCH)} - set(LAYERS))
    assert not unknown, f"modules outside the layers {LAYERS}: {unknown}"


def test_package_shape():
    top_level = sorted(p.name for p in KBENCH.glob("*.py"))
    subpackages = sorted(p.name for p in KBENCH.iterdir() if (p / "__init__.py").is_file())
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level
    assert len(subpackages) >= MIN_SUBPACKAGES, subpackages


def test_kbench_has_no_import_cycle():
    graph = import_graph(KBENCH)
    assert "kbench.running.worker" in graph["kbench.running.supervisor"]  # the graph sees the real imports
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_layers_below(layer):
    rank = {name: i for i, name in enumerate(LAYERS)}
    offenders = [f"{module} imports {imported}"
                 for module, imports in import_graph(KBENCH).items() if layer_of(module) == layer
                 for imported in imports if rank[layer_of(imported)] > rank[layer]]
    assert not offenders, f"{NEVER[layer]}: {offenders}"


def test_every_mac_rule_module_is_registered():
    rules = KBENCH / "counting" / "rules"
    registered = imported_names(rules / "__init__.py")
    modules = {f"kbench.counting.rules.{p.stem}" for p in rules.glob("*.py") if not p.stem.startswith("_")}
    assert modules <= registered, sorted(modules - registered)


def test_architectures_never_import_kbench():
    offenders = [f"{module_name(path)} imports {imported}" for path in source_files(ARCHITECTURES)
                 for imported in imported_names(path) if imported == "kbench" or imported.startswith("kbench.")]
    assert not offenders, offenders


BACKEND_BRANCH = re.compile(r"\bbackend\s*(==|!=)|\bbackend\s+(not\s+)?in\s*\(")


@pytest.mark.parametrize("line, branch", [('if backend == "jax":', True), ("cfg.backend != 'torch'", True),
                                          ('backend in ("jax", "torch")', True), ("backend=backend", False),
                                          ("backends.active()", False)])
def test_backend_branch_pattern(line, branch):
    assert bool(BACKEND_BRANCH.search(line)) is branch


def test_backend_branches_only_in_backends_module():
    offenders = []
    for path in source_files(KBENCH):
        if path == KBENCH / "running" / "backends.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if BACKEND_BRANCH.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders
