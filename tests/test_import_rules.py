"""The layering of ARCHITECTURE.md, checked on the AST of every source file.

openvle_core never imports the web framework or the outer packages (api, worker, cli);
the simulator openvle_pvesim stands alone (no other openvle_* package).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
RULES = {
    "openvle_core": {"fastapi", "openvle_api", "openvle_worker", "openvle_cli"},
    "openvle_pvesim": {"openvle_core", "openvle_api", "openvle_worker", "openvle_cli"},
}


def imported_roots(tree: ast.AST) -> set[str]:
    """Top-level package names of every absolute import in `tree` (nested ones included)."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def violations(package: str) -> list[str]:
    """`file: module` for every forbidden import under src/<package>."""
    found: list[str] = []
    for path in sorted((SRC / package).rglob("*.py")):
        bad = imported_roots(ast.parse(path.read_text(), str(path))) & RULES[package]
        found.extend(f"{path.relative_to(SRC)}: {name}" for name in sorted(bad))
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_only_what_its_layer_may(package: str) -> None:
    assert list((SRC / package).rglob("*.py")), f"no sources found under {package}"
    assert violations(package) == []


def test_the_checker_sees_a_nested_forbidden_import() -> None:
    tree = ast.parse("def f():\n    from openvle_worker.cron_sync import sync_tick\n")
    assert imported_roots(tree) & RULES["openvle_core"] == {"openvle_worker"}
