"""The package is layered with no back-edges: a module imports only from its own layer or lower ones."""

from __future__ import annotations

import ast
from pathlib import Path

import speechgap

LAYERS = [
    {"errors", "version"},
    {"scoring", "metrics", "io", "provenance"},
    {"data", "report"},
    {"models", "evaluation", "synthesis"},
    {"compression", "interventions", "mini", "analysis"},
    {"demo", "study", "api", "explore"},
    {"sweep"},
    {"cli", "__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
PACKAGE = Path(speechgap.__file__).parent


def _unit(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, imported unit)`` of every import of speechgap in the file, at any depth (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "speechgap":
                found.append((node.lineno, parts[1] if len(parts) > 1 else "speechgap"))
    return found


def test_every_unit_of_the_package_has_a_layer():
    units = {_unit(path) for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units == set(RANK)


def test_no_module_imports_from_a_higher_layer():
    back_edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        if unit == "__init__":
            continue  # the package's lazy exports: names only, resolved on first use
        for line, target in _imports(path):
            if target == "speechgap":
                back_edges.append(f"{path}:{line} imports the package root (import the defining module)")
            elif target != unit and RANK[target] > RANK[unit]:
                back_edges.append(
                    f"{path}:{line}: {unit} (layer {RANK[unit]}) imports {target} (layer {RANK[target]})"
                )
    assert back_edges == []


def test_the_check_sees_a_back_edge(tmp_path):
    source = tmp_path / "fake.py"
    source.write_text("def f():\n    from speechgap.cli import main\n    import speechgap.sweep.run\n")
    assert _imports(source) == [(2, "cli"), (3, "sweep")]
