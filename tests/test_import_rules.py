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


# --- inside openvle_core: rooms in layers, each imports only its own room or lower ones --

CORE_LAYERS: list[set[str]] = [
    {"errors", "metrics", "collector"},
    {"availability"},
    {"settings", "queue", "names"},
    {"logging", "db", "proxmox", "doctor_fixes", "redisconn"},
    {"doctor", "placement", "snapshot", "ipam", "changelog", "tokens"},
    {"health", "runtime", "nodes"},
    {"operations", "system"},
    {"guests"},
    {"templates"},
    {"vms"},
    {"events", "sync"},
    {"handlers", "scheduler"},
]
LAYER_OF = {room: i for i, rooms in enumerate(CORE_LAYERS) for room in rooms}


def core_room(path: Path) -> str:
    """The room of a core source file: its folder under openvle_core, or its own name."""
    parts = path.relative_to(SRC / "openvle_core").parts
    return parts[0] if len(parts) > 1 else path.stem


def core_imports(tree: ast.AST) -> set[str]:
    """Rooms of openvle_core that `tree` imports (`from openvle_core.X...`, `import ...`)."""
    rooms: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "openvle_core":
                names = [f"openvle_core.{alias.name}" for alias in node.names]
        rooms.update(n.split(".")[1] for n in names if n.startswith("openvle_core."))
    return rooms


def layer_violations() -> list[str]:
    """`file -> room` for every import of a room on a higher or the same (other) layer."""
    found: list[str] = []
    for path in sorted((SRC / "openvle_core").rglob("*.py")):
        room = core_room(path)
        if room == "__init__":
            continue
        for other in sorted(core_imports(ast.parse(path.read_text(), str(path))) - {room}):
            if LAYER_OF[other] >= LAYER_OF[room]:
                found.append(f"{path.relative_to(SRC)} -> {other}")
    return found


def test_every_core_room_has_a_layer() -> None:
    rooms = {core_room(p) for p in (SRC / "openvle_core").rglob("*.py")} - {"__init__"}
    assert rooms == set(LAYER_OF)


def test_core_rooms_import_only_their_own_room_or_lower_layers() -> None:
    assert layer_violations() == []


def test_the_layer_checker_sees_an_import_running_up() -> None:
    tree = ast.parse("from openvle_core.vms.records import load_vm\nimport openvle_core.sync")
    assert core_imports(tree) == {"vms", "sync"}
    assert LAYER_OF["vms"] > LAYER_OF["guests"]


# --- SQL only in repositories and queries (and the database and SQL-snapshot adapters) ----

SQL_PLACES = ("repository.py", "queries.py")
SQL_FILES = {"openvle_core/snapshot/sql.py", "openvle_api/readdb.py"}


def may_write_sql(path: Path) -> bool:
    relative = str(path.relative_to(SRC))
    return (
        path.name in SQL_PLACES or relative.startswith("openvle_core/db/") or relative in SQL_FILES
    )


def imports_sql(tree: ast.AST) -> bool:
    """Whether `tree` imports SQLAlchemy's statement layer (`sqlalchemy` itself, where
    select/update/func/text live), rather than its sessions or exceptions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "sqlalchemy" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module in {"sqlalchemy", "sqlalchemy.sql"}:
            return True
    return False


def sql_violations() -> list[str]:
    return [
        str(path.relative_to(SRC))
        for package in ("openvle_core", "openvle_api", "openvle_worker", "openvle_cli")
        for path in sorted((SRC / package).rglob("*.py"))
        if not may_write_sql(path) and imports_sql(ast.parse(path.read_text(), str(path)))
    ]


def test_sql_is_written_only_in_repositories_and_queries() -> None:
    assert sql_violations() == []


def test_the_sql_checker_sees_a_select_import() -> None:
    assert imports_sql(ast.parse("from sqlalchemy import select"))
    assert not imports_sql(ast.parse("from sqlalchemy.ext.asyncio import AsyncSession"))


# --- a domain's request service stages rows; it never reaches into the operation side ----

DOMAINS = ("vms", "templates", "events")
REQUEST_SIDE = {"repository", "queries", "errors", "membership", "service", "vm_names", "plan"}
OPERATIONS_REQUEST_SIDE = {"repository", "kinds", "errors"}


def is_operation_side(module: str) -> bool:
    """Clone steps (guests), the runner and journal, a domain's handlers and their steps."""
    parts = module.split(".")
    if parts[0] != "openvle_core" or len(parts) < 2:
        return False
    room, leaf = parts[1], parts[2] if len(parts) > 2 else ""
    if room == "guests":
        return True
    if room == "operations":
        return leaf not in OPERATIONS_REQUEST_SIDE
    return room in {*DOMAINS, "sync"} and leaf not in REQUEST_SIDE


def request_side_violations() -> list[str]:
    """`service.py -> module` for each import of the operation side by a request service."""
    found: list[str] = []
    for domain in DOMAINS:
        path = SRC / "openvle_core" / domain / "service.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and is_operation_side(node.module):
                found.append(f"{domain}/service.py -> {node.module}")
    return found


def test_request_services_do_not_import_the_operation_side() -> None:
    assert request_side_violations() == []


def test_the_request_side_checker_sees_a_step_import() -> None:
    assert is_operation_side("openvle_core.guests.cloning")
    assert is_operation_side("openvle_core.vms.power")
    assert not is_operation_side("openvle_core.vms.repository")
    assert not is_operation_side("openvle_core.operations.repository")
