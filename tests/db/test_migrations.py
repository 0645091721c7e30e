"""The migration chain: up, down, up again on both backends; models and migrations agree;
several replicas migrating at once do not trip over each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from openvle_core.db.migrate import (
    current_revision,
    downgrade_to,
    head_revision,
    include_name,
    upgrade_to_head,
)
from openvle_core.db.models import Base
from openvle_core.db.session import create_engine

DbFactory = Callable[[str], Awaitable[str]]


@pytest.fixture(params=["sqlite", "mariadb"])
async def empty_db_url(
    request: pytest.FixtureRequest, tmp_path: Path, mariadb_database_factory: DbFactory
) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}"
    return await mariadb_database_factory("mig")


async def _tables_and_diff(url: str) -> tuple[set[str], list[Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync: Any) -> tuple[set[str], list[Any]]:
                opts = {"compare_type": True, "include_name": include_name}
                context = MigrationContext.configure(sync, opts=opts)
                return set(inspect(sync).get_table_names()), compare_metadata(
                    context, Base.metadata
                )

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    head = head_revision()
    assert head is not None
    assert await upgrade_to_head(empty_db_url) == head
    tables, _ = await _tables_and_diff(empty_db_url)
    assert set(Base.metadata.tables) <= tables

    await downgrade_to(empty_db_url, "base")
    assert await current_revision(empty_db_url) is None
    tables, _ = await _tables_and_diff(empty_db_url)
    assert tables <= {"alembic_version"}

    assert await upgrade_to_head(empty_db_url) == head


async def test_models_and_migrations_agree(empty_db_url: str) -> None:
    await upgrade_to_head(empty_db_url)
    _, diff = await _tables_and_diff(empty_db_url)
    assert diff == []


async def test_concurrent_upgrades_are_serialised(empty_db_url: str) -> None:
    results = await asyncio.gather(*(upgrade_to_head(empty_db_url) for _ in range(3)))
    assert results == [head_revision()] * 3
    _, diff = await _tables_and_diff(empty_db_url)
    assert diff == []


async def test_rows_made_before_identity_evidence_become_legacy(empty_db_url: str) -> None:
    """0003: VMs and templates that exist already were made before evidence was recorded:
    they are confirmed once by the old rule later (`legacy`); a VM never cloned stays
    `unconfirmed`."""
    await upgrade_to_head(empty_db_url)
    await downgrade_to(empty_db_url, "0002")
    now = "2026-11-30 12:00:00.000000"
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO templates (id, vmid, name, status, created_at, updated_at) "
                    "VALUES ('t1', 9000, 'debian', 'available', :now, :now)"
                ),
                {"now": now},
            )
            for vm_id, vmid in (("v1", 100), ("v2", None)):
                await conn.execute(
                    text(
                        "INSERT INTO vms (id, vmid, name, status, full_clone, ha_managed, "
                        "created_at, updated_at) VALUES "
                        "(:id, :vmid, :id, 'running', 0, 0, :now, :now)"
                    ),
                    {"id": vm_id, "vmid": vmid, "now": now},
                )
        await upgrade_to_head(empty_db_url)
        async with engine.connect() as conn:
            vms = dict((await conn.execute(text("SELECT id, identity FROM vms"))).all())
            templates = (await conn.execute(text("SELECT identity FROM templates"))).all()
    finally:
        await engine.dispose()
    assert vms == {"v1": "legacy", "v2": "unconfirmed"}
    assert [t[0] for t in templates] == ["legacy"]
