"""The import picture of corral, read from the source: data flows down.

    store ← api ← client ← scheduler / controllers / proxy / offers ← agent ← cli

Every import counts, also those under ``if TYPE_CHECKING`` and inside functions:
a layer that reaches up, or two modules that import each other, are what this
test keeps out for good.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import corral

ROOT = Path(corral.__file__).parent
# What a layer must never import (its own package and those below are fine).
FORBIDDEN = {
    "corral.store": ("corral.api", "corral.client", "corral.scheduler", "corral.controllers",
                     "corral.agent", "corral.proxy", "corral.offers", "corral.cli"),
    "corral.api": ("corral.client", "corral.scheduler", "corral.controllers", "corral.agent",
                   "corral.proxy", "corral.offers", "corral.cli"),
    "corral.client": ("corral.scheduler", "corral.controllers", "corral.agent", "corral.proxy",
                      "corral.offers", "corral.cli", "corral.store"),
    "corral.scheduler": ("corral.controllers", "corral.agent", "corral.cli", "corral.store"),
    "corral.controllers": ("corral.scheduler", "corral.agent", "corral.cli", "corral.store"),
    "corral.proxy": ("corral.agent", "corral.cli", "corral.store"),
    "corral.agent": ("corral.cli", "corral.store"),
    "corral.objects": ("corral.",),  # the shared vocabulary imports nothing of corral's
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The corral modules ``path`` imports (``from pkg import mod`` counts as mod)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("corral"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "corral") and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found & known.keys()


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def in_package(module: str, package: str) -> bool:
    return module == package.rstrip(".") or module.startswith(package.rstrip(".") + ".")


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{src} imports {dst}"
        for src, targets in edges.items()
        for layer, banned in FORBIDDEN.items() if in_package(src, layer)
        for dst in targets if any(
            dst.startswith(b) if b.endswith(".") else in_package(dst, b) for b in banned))


def cycles_in(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    # A package's __init__ re-exporting its own submodules is not a cycle of concepts.
    return [c for c in cycles if not any(
        in_package(b, a) for a, b in itertools.pairwise(c))]


def test_no_layer_imports_upward() -> None:
    assert upward_imports(graph()) == []


def test_no_import_cycles() -> None:
    assert cycles_in(graph()) == []


def test_the_rule_sees_imports() -> None:
    """The graph is not empty by accident: known arrows are found."""
    edges = graph()
    assert "corral.objects" in edges["corral.scheduler.loop"]
    assert "corral.store.base" in edges["corral.api.server"]
    assert "corral.api.errors" in edges["corral.client.http"]
