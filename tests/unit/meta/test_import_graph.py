"""The engine's modules import each other without a cycle, and each imports in a fresh interpreter whatever was
imported before it (every module in alphabetical order, then in reverse order).

A cycle between two modules' top-level imports works or fails depending on which one a process imports first, so
the static check finds it before an import order does. Imports inside functions are left out: the only ones the
code keeps are of heavy packages (torch, Ray, SQLMesh, the Google clients ...), each with a comment saying why.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("agents", "ame", "data", "environment", "policies", "serve")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _top_level_imports(path: Path) -> list[str]:
    """The modules ``path`` imports at module level (not under ``if TYPE_CHECKING``, not inside functions)."""
    found: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.extend(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                             for a in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target in _top_level_imports(path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module."""
    names = sorted(graph)
    at = {name: i for i, name in enumerate(names)}
    edges = [(at[a], at[b]) for a in names for b in graph[a]]
    rows, cols = zip(*edges, strict=True) if edges else ((), ())
    matrix = csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(names), len(names)))
    _, label = connected_components(matrix, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for name, component in zip(names, label, strict=True):
        groups.setdefault(int(component), []).append(name)
    return sorted(group for group in groups.values() if len(group) > 1)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other() -> None:
    assert cycles(_graph()) == [], "modules that import each other at the top (move the shared piece down a layer)"


@pytest.mark.parametrize("order", ["alphabetical", "reverse"])
def test_every_module_imports_whatever_came_before(order: str) -> None:
    names = sorted(MODULES, reverse=order == "reverse")
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", script, *names], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
