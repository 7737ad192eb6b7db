"""The CLI's modules import each other one way only: no module imports one that imports it back.

Every ``from . import`` and ``from ._x import`` counts, the lazy ones inside functions too,
so a helper that two modules share has to live below both of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crewship_async.cli

CLI_DIR = Path(crewship_async.cli.__file__).parent


def cli_imports() -> dict[str, set[str]]:
    """Each CLI module's name and the CLI modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in CLI_DIR.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            if node.module is None:
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module)
        graph[path.stem] = found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of module names, or an empty list."""
    visiting: list[str] = []
    finished: set[str] = set()

    def visit(name: str) -> list[str]:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in finished or name not in graph:
            return []
        visiting.append(name)
        for target in sorted(graph[name]):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        finished.add(name)
        return []

    for name in sorted(graph):
        cycle = visit(name)
        if cycle:
            return cycle
    return []


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_cli_modules_import_one_way() -> None:
    graph = cli_imports()
    assert "_output" in graph
    assert find_cycle(graph) == []


def test_the_text_helpers_sit_below_output_and_render() -> None:
    graph = cli_imports()
    assert graph["_text"] == set()
    assert "_text" in graph["_output"]
    assert "_text" in graph["_render"]
    assert "_output" not in graph["_render"]
