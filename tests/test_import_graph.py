"""The rooms of the house import downwards only: every module of server/codekin parsed with
`ast` (imports inside functions and under TYPE_CHECKING count too)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "codekin"
ENTRY_POINTS = {"codekin.__main__"}  # `python -m codekin`: the command line's own front door
CORE = ("codekin.index", "codekin.embedding", "codekin.chunking", "codekin.models", "codekin.engine",
        "codekin.indexer")
ABOVE_CORE = ("codekin.jobs", "codekin.training", "codekin.lsp", "codekin.mcp", "codekin.cli")
# The faces over the same services: the language server (editors) and the MCP server (agents).
FACES = ("codekin.lsp", "codekin.mcp")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def imported(tree: ast.AST) -> Iterator[str]:
    """Every codekin module a module imports; `from codekin.x import name` counts as codekin.x.name
    when that is a module, else as codekin.x."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "codekin")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] != "codekin":
                continue
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                path = PACKAGE.parent / candidate.replace(".", "/")
                yield candidate if path.with_suffix(".py").is_file() or path.is_dir() else node.module


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        edges[module_name(path)] = set(imported(ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return edges


def within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in ((prefixes,) if isinstance(prefixes, str) else prefixes))


def room(name: str) -> str:
    """codekin.training.mining.triplets -> codekin.training (a top-level package or module)."""
    return ".".join(name.split(".")[:2])


def package_of(name: str) -> str:
    """The package a module lives in (a top-level module is its own node)."""
    if is_package(name):
        return name
    parent = name.rsplit(".", 1)[0]
    return name if parent == "codekin" else parent


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def collapsed(edges: dict[str, set[str]], unit: Callable[[str], str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for source, targets in edges.items():
        out.setdefault(unit(source), set()).update(unit(t) for t in targets if unit(t) != unit(source))
    return out


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_the_graph_is_read(edges):
    assert {"codekin.cli.main", "codekin.engine", "codekin.models.registry"} <= set(edges)
    assert "codekin.models.registry" in edges["codekin.training.pipeline"]


def test_nothing_outside_cli_imports_it(edges):
    wrong = sorted(f"{source} imports {target}" for source, targets in edges.items() for target in targets
                   if within(target, "codekin.cli") and not within(source, "codekin.cli")
                   and source not in ENTRY_POINTS)
    assert wrong == []


def test_the_core_imports_no_room_above_it(edges):
    wrong = sorted(f"{source} imports {target}" for source, targets in edges.items() for target in targets
                   if within(source, CORE) and within(target, ABOVE_CORE))
    assert wrong == []


def test_the_faces_stand_side_by_side(edges):
    wrong = sorted(f"{source} imports {target}" for source, targets in edges.items() for target in targets
                   for face in FACES if within(source, face) and within(target, FACES) and not within(target, face))
    assert wrong == []
    assert "codekin.engine" in edges["codekin.mcp.service"]  # a face over the Engine, not a copy of it


def test_no_import_cycle_between_packages(edges):
    assert cycles(collapsed(edges, room)) == []
    assert cycles(collapsed(edges, package_of)) == []


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
