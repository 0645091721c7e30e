"""The simulator's import graph: no circles, and no import of the service's packages.

Every `import` and `from ... import` counts, wherever it stands (TYPE_CHECKING blocks and
function bodies included), and so does `importlib.import_module("openvle_pvesim...")`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import openvle_pvesim

PACKAGE = Path(openvle_pvesim.__file__).parent


def module_name(path: Path) -> str:
    parts = ["openvle_pvesim", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The package's modules a file names in any import form."""
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        found.update(name for name in names if name in modules)
        found.update(name for name in names if name.split(".")[0] == "openvle_core")
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {
        name: imported(ast.parse(path.read_text()), modules) - {name}  # a package's own name
        for name, path in files.items()
    }


def cycle_from(start: str, edges: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start, if one exists (depth-first)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_the_simulator_has_no_import_circles() -> None:
    """A file never imports, directly or through others, a file that imports it.

    The package's `__init__` is left out: Python runs it before any submodule anyway, and
    it only re-exports the harness.
    """
    edges = {k: {v for v in vs if v != "openvle_pvesim"} for k, vs in graph().items()}
    circles = [c for name in sorted(edges) if (c := cycle_from(name, edges)) is not None]
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_simulator_imports_only_itself() -> None:
    strays = {
        name: sorted(v for v in found if v.startswith("openvle_core"))
        for name, found in graph().items()
    }
    assert {k: v for k, v in strays.items() if v} == {}


def test_the_checker_sees_a_type_checking_import() -> None:
    """The check can fail: an import under TYPE_CHECKING is an edge."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a.b import C\n"
    assert imported(ast.parse(source), {"a.b"}) == {"a.b"}
    assert cycle_from("x", {"x": {"y"}, "y": {"x"}}) == ["x", "y", "x"]
