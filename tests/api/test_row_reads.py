"""The API's Core read path for VMs: same values and cursors as the ORM path, read-only."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_api.readdb import SQLiteRowReader, create_row_engine
from openvle_api.schemas.vms import VmOut
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Template, Vm
from openvle_core.db.pagination import Page, encode_cursor
from openvle_core.db.session import (
    EngineRowReader,
    RowReader,
    create_engine,
    session_factory,
    transaction,
)
from openvle_core.vms import queries
from openvle_core.vms.errors import VmNotFound


@pytest.fixture
async def database(tmp_path: Path) -> str:
    """An SQLite file with 7 VMs on two nodes."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'rows.sqlite3'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        template = Template(vmid=9000, name="debian-12", node="pve1")
        session.add(template)
        await session.flush()
        for i in range(7):
            node = "pve1" if i % 2 else "pve2"
            session.add(Vm(vmid=100 + i, name=f"vm{i}", node=node, template_id=template.id))
    await engine.dispose()
    return url


def _json(items: Iterable[object]) -> list[str]:
    """The API's JSON of each VM (an ORM object or a row)."""
    return [VmOut.model_validate(item).model_dump_json() for item in items]


async def _expected_pages(session: AsyncSession, node: str | None, size: int) -> list[Page[Vm]]:
    """The pages the API must give, built from every row (the oracle: no shared code)."""
    every = (await session.scalars(select(Vm))).all()
    wanted = sorted((vm for vm in every if node is None or vm.node == node), key=lambda v: v.id)
    chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
    return [
        Page(items=chunk, next_cursor=encode_cursor(chunk[-1].id) if n < len(chunks) else None)
        for n, chunk in enumerate(chunks, start=1)
    ]


@pytest.mark.parametrize("kind", ["sync", "engine"])
async def test_rows_match_the_database(database: str, kind: str) -> None:
    engine = create_engine(database, immediate=False)  # reads only: no write lock to share
    sync_reader = SQLiteRowReader(database)
    reader: RowReader = sync_reader if kind == "sync" else EngineRowReader(engine)
    try:
        async with session_factory(engine)() as session:
            for node, pages in (("pve1", 2), (None, 4)):
                expected = await _expected_pages(session, node, 2)
                assert len(expected) == pages
                cursor = None
                for want in expected:
                    got = await queries.list_vm_rows(reader, node=node, limit=2, cursor=cursor)
                    assert _json(got.items) == _json(want.items)
                    assert got.next_cursor == want.next_cursor
                    cursor = got.next_cursor
            vm = (await _expected_pages(session, None, 1))[-1].items[0]
            row = await queries.get_vm_row(reader, vm.id)
            assert _json([row]) == _json([vm])
        with pytest.raises(VmNotFound):
            await queries.get_vm_row(reader, "no-such-vm")
    finally:
        await sync_reader.dispose()
        await engine.dispose()


async def test_sqlite_rows_are_read_beside_a_writer_and_never_written(database: str) -> None:
    engine = create_engine(database)
    reader = SQLiteRowReader(database)
    try:
        async with transaction(session_factory(engine)) as holding:
            holding.add(Vm(vmid=999, name="uncommitted"))
            await holding.flush()  # holds the write lock from here on
            page = await queries.list_vm_rows(reader, limit=100)
            assert "uncommitted" not in {row.name for row in page.items}
            assert len(page.items) == 7
        with reader.engine.connect() as connection, pytest.raises(OperationalError):
            connection.execute(text("DELETE FROM vms"))
    finally:
        await reader.dispose()
        await engine.dispose()


async def test_mariadb_row_reads_survive_a_dropped_connection(
    mariadb_database_factory: Any,
) -> None:
    url = await mariadb_database_factory("rows")
    await upgrade_to_head(url)
    engine, admin = create_row_engine(url, pool_size=1), create_engine(url)
    reader = EngineRowReader(engine)
    try:
        assert (await queries.list_vm_rows(reader)).items == []
        async with engine.connect() as connection:  # the one pooled connection
            pooled = (await connection.execute(text("SELECT CONNECTION_ID()"))).scalar_one()
        async with admin.connect() as connection:
            await connection.execute(text(f"KILL CONNECTION {int(pooled)}"))
        with pytest.raises(VmNotFound):  # a clean answer, on a fresh connection
            await queries.get_vm_row(reader, "no-such-vm")
    finally:
        await engine.dispose()
        await admin.dispose()
