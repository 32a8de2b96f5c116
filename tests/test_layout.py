"""The architecture, checked from the source: imports run downward only, and no module cycles.

Layers, lowest first: the engine (``cams``), the data layer (``imagedata``), ``fooling``,
``evaluation``, the app's tab backends (``studio``), the benchmarks, ``app.py``. A module may
import its own package and the packages below it. A package's ``__main__.py`` (a command line
that gathers what sits above it) is the one exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("cams", "imagedata", "fooling", "evaluation", "studio", "benchmarks", "app")


def project_modules() -> dict[str, Path]:
    """Dotted name → file, for every module of the layered packages and app.py."""
    modules = {"app": ROOT / "app.py"}
    for package in LAYERS[:-1]:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def edges() -> dict[str, set[str]]:
    """Module → the project modules it imports (``__main__`` files left out)."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        if path.name == "__main__.py":
            continue
        graph[name] = {target for target in imported(path) if target in modules
                       and not target.endswith("__main__") and target != name}
    return graph


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_the_layout_test_sees_every_package():
    modules = project_modules()
    assert {name.split(".")[0] for name in modules} == set(LAYERS)
    assert len(edges()) > 40 and "cams.engine" in modules and "imagedata.sources" in modules


def test_imports_run_downward_only():
    upward = sorted(f"{source} imports {target}" for source, targets in edges().items()
                    for target in targets if layer(target) > layer(source))
    assert upward == []


def test_the_engine_imports_nothing_of_the_project_but_itself():
    outside = sorted(f"{source} imports {target}" for source, targets in edges().items()
                     if source.startswith("cams") for target in targets
                     if not target.startswith("cams"))
    assert outside == []


def test_no_module_cycles():
    graph = edges()
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("package", ["cams", "fooling"])
def test_main_may_dispatch_upward(package):
    """The exception is real and limited: the command lines reach the benchmarks (and, for
    ``python -m cams``, the evaluation) through ``__main__.py`` alone."""
    targets = imported(ROOT / package / "__main__.py")
    assert any(name.startswith("benchmarks") for name in targets)
