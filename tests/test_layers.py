"""Imports point down the layers: a package imports only packages of lower layers (function-level imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "embedkit"

# Lowest first. Packages in one layer do not import each other.
LAYERS: list[set[str]] = [
    {"errors", "choices", "filenames", "paths"},
    {"fsutil", "console"},
    {"progress", "integrity"},
    {"config", "data"},
    {"modeling"},
    {"losses", "inference"},
    {"retrieval"},
    {"evaluation"},
    {"training"},
    {"benchmark", "hub", "compression", "serving", "export"},
    {"api"},
    {"cli"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def unit_of(path: Path) -> str:
    """The package (or top-level module) a file belongs to: ``embedkit/inference/ort.py`` -> ``inference``."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("embedkit.") and node.level == 0:
            units.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "embedkit":
            units.update(alias.name for alias in node.names if alias.name != "__version__")
        elif isinstance(node, ast.Import):
            units.update(a.name.split(".")[1] for a in node.names if a.name.startswith("embedkit."))
    return units


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_unit_has_a_layer():
    assert {unit_of(p) for p in SOURCES} <= set(LAYER_OF), "add new packages to LAYERS"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    unit = unit_of(path)
    wrong = sorted(other for other in imported_units(path) - {unit} if LAYER_OF[other] >= LAYER_OF[unit])
    assert not wrong, f"{path.relative_to(PACKAGE)} ({unit}) imports {wrong} from its own layer or above"
