"""The simulator reference page lists exactly the served paths (the registered routes)
and exactly the schema paths that answer 501 (everything else of both versions)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from openvle_pvesim.contract import ROUTES
from openvle_pvesim.schema import VERSIONS, load_schema

PAGE = Path(__file__).parents[2] / "docs" / "reference" / "simulator.md"
ORDER = ["GET", "POST", "PUT", "DELETE"]


def block(name: str) -> str:
    text = PAGE.read_text()
    return text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]


def register_routes() -> None:
    importlib.import_module("openvle_pvesim.handlers")
    importlib.import_module("openvle_pvesim.access_handlers")


def test_the_reference_lists_exactly_the_served_paths() -> None:
    register_routes()
    listed = {
        (method, path)
        for methods, path in re.findall(r"^- `([A-Z ]+) (/\S*)`$", block("served-paths"), re.M)
        for method in methods.split()
    }
    assert listed == set(ROUTES)


def unserved_lines() -> list[str]:
    """`- \\`METHODS /path\\`` per path (and per set of versions that have the methods)."""
    versions: dict[str, dict[str, set[str]]] = {}
    for version in VERSIONS:
        for path, methods in load_schema(version).paths.items():
            for method in methods:
                if (method, path) not in ROUTES:
                    versions.setdefault(path, {}).setdefault(method, set()).add(version)
    lines = []
    for path in sorted(versions):
        groups: dict[frozenset[str], list[str]] = {}
        for method, where in versions[path].items():
            groups.setdefault(frozenset(where), []).append(method)
        for where, methods in sorted(groups.items(), key=lambda group: -len(group[0])):
            note = "" if len(where) == len(VERSIONS) else f" ({next(iter(where))} only)"
            lines.append(f"- `{' '.join(sorted(methods, key=ORDER.index))} {path}`{note}")
    return lines


def test_the_reference_lists_exactly_the_paths_that_answer_501() -> None:
    register_routes()
    listed = [line for line in block("unserved-paths").splitlines() if line]
    assert listed == unserved_lines()
