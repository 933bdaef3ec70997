"""The shape of the code base, checked from the source (``ast``, nothing imported):

* no import cycle among kbench's modules (function-level imports included),
* the library never imports the CLI layer (``kbench.cli``, ``kbench.commands``),
* ``architectures/`` (pure Keras builders) never imports kbench,
* only ``kbench/backends.py`` branches on a backend's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KBENCH = ROOT / "kbench"
ARCHITECTURES = ROOT / "architectures"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def imported_names(path: Path, root: Path = ROOT, modules=None) -> set[str]:
    """Every module an ``import``/``from ... import`` anywhere in the file (function bodies
    included) loads. ``from a import b`` names ``a.b`` where that is one of ``modules``, else
    ``a``; without ``modules`` it names both."""
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


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_import_parsing(tmp_path):
    (tmp_path / "pkg").mkdir()
    path = tmp_path / "pkg" / "m.py"
    path.write_text("import os\nfrom kbench import env\nfrom . import sibling\n\n"
                    "def f():\n    from kbench.sweep import plan\n")
    assert imported_names(path, tmp_path) >= {"pkg", "pkg.sibling", "os", "kbench", "kbench.env", "kbench.sweep",
                                              "kbench.sweep.plan"}
    # Knowing the modules: `from kbench import env` depends on kbench.env, not on kbench itself.
    known = {"kbench", "kbench.env", "kbench.sweep", "pkg", "pkg.sibling"}
    assert imported_names(path, tmp_path, known) == {"os", "kbench.env", "pkg.sibling", "kbench.sweep"}


def test_kbench_has_no_import_cycle():
    graph = import_graph(KBENCH)
    assert "kbench.sweep" in graph and "kbench.timing" in graph["kbench.sweep"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_library_does_not_import_the_cli_layer():
    cli_layer = ("kbench.cli", "kbench.commands", "kbench.__main__")
    offenders = []
    for path in source_files(KBENCH):
        name = module_name(path)
        if name.startswith(cli_layer):
            continue
        for imported in imported_names(path):
            if imported.startswith(cli_layer):
                offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders


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
        if path == KBENCH / "backends.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if BACKEND_BRANCH.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders
