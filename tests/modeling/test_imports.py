"""The modules of embedkit.modeling import each other without a cycle, function-level imports included."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import embedkit.modeling

PACKAGE = "embedkit.modeling"


def _imports_within_package(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.startswith(PACKAGE + ".")}
    return found


def test_modeling_has_no_import_cycle():
    directory = Path(embedkit.modeling.__file__).parent
    modules = {f"{PACKAGE}.{path.stem}": path for path in directory.glob("*.py") if path.stem != "__init__"}
    graph = {name: _imports_within_package(path) & set(modules) for name, path in modules.items()}
    assert graph[f"{PACKAGE}.loading"], "the graph is built from real imports"  # loading sits on lora
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle in {PACKAGE}: {' -> '.join(exc.args[1])}") from None
