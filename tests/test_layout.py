"""The architecture, checked from the source: imports run downward only, and no module cycles.

Layers, lowest first: the engine (``cams``), the data layer (``cam_studio.data``), ``fooling``,
the evaluation (``cam_studio.evaluation``), the app's tab backends (``cam_studio.tabs``), the
benchmarks (``cam_studio.benchmarks``), and on top the command lines (``cam_studio.commands``),
the page (``cam_studio.page``) and ``app.py``. A module may import its own layer and the layers
below it; there is no exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each layer by the dotted prefixes of its modules (the longest prefix decides).
LAYERS = (("cams",), ("cam_studio.data",), ("fooling",), ("cam_studio.evaluation",),
          ("cam_studio.tabs",), ("cam_studio.benchmarks",),
          ("cam_studio", "cam_studio.commands", "cam_studio.page", "app"))
PACKAGES = ("cams", "fooling", "cam_studio")


def project_modules() -> dict[str, Path]:
    """Dotted name → file, for every module of the packages and app.py."""
    modules = {"app": ROOT / "app.py"}
    for package in PACKAGES:
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
    """Module → the project modules it imports."""
    modules = project_modules()
    return {name: {target for target in imported(path) if target in modules and target != name}
            for name, path in modules.items()}


def layer(module: str) -> int:
    matches = [(len(prefix), index) for index, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def test_the_layout_test_sees_every_layer():
    modules = project_modules()
    assert {layer(name) for name in modules} == set(range(len(LAYERS)))
    assert len(edges()) > 60 and "cams.engine" in modules and "cam_studio.data.sources" in modules


def test_imports_run_downward_only():
    upward = sorted(f"{source} imports {target}" for source, targets in edges().items()
                    for target in targets if layer(target) > layer(source))
    assert upward == []


def test_the_engine_imports_nothing_of_the_project_but_itself():
    outside = sorted(f"{source} imports {target}" for source, targets in edges().items()
                     if source.startswith("cams") for target in targets
                     if not target.startswith("cams"))
    assert outside == []


def test_the_upper_packages_face_imports_nothing():
    """``cam_studio/__init__.py`` sits above the data layer it contains: it must import nothing,
    so that ``fooling`` can import ``cam_studio.data`` without pulling in the layers above."""
    assert edges()["cam_studio"] == set()


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
