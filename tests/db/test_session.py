"""Concurrent units of work that read, then write, all succeed on both backends; on SQLite
writers take turns (first come, first served, no busy polling) and readers do not queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Vm
from openvle_core.db.session import (
    ReadOnlyWrite,
    create_engine,
    engine_from_settings,
    reading,
    session_factory,
    transaction,
)
from openvle_core.settings import DatabaseSettings


async def test_concurrent_read_then_write_transactions(db_engine: AsyncEngine) -> None:
    factory = session_factory(db_engine)
    vmids = range(70_000, 70_008)
    async with transaction(factory) as session:
        session.add_all(Vm(name=f"c{v}", vmid=v, status="stopped") for v in vmids)

    async def flip(vmid: int) -> None:
        for _ in range(5):
            async with transaction(factory) as session:
                vm = await session.scalar(select(Vm).where(Vm.vmid == vmid))
                assert vm is not None
                await asyncio.sleep(0)  # let the others interleave between read and write
                vm.status = "running" if vm.status == "stopped" else "stopped"

    try:
        results = await asyncio.gather(*(flip(v) for v in vmids), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        async with factory() as session:
            stmt = select(Vm.status).where(Vm.vmid.in_(list(vmids)))
            assert set((await session.scalars(stmt)).all()) == {"running"}
    finally:
        async with transaction(factory) as session:
            await session.execute(delete(Vm).where(Vm.vmid.in_(list(vmids))))


async def test_engine_from_settings_uses_database_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'from-settings.sqlite3'}"
    engine = engine_from_settings(DatabaseSettings(url=SecretStr(url)))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert (tmp_path / "from-settings.sqlite3").exists()
    finally:
        await engine.dispose()


async def _sqlite(tmp_path: Path, *, busy_timeout_ms: int | None = None) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{tmp_path / 'turns.sqlite3'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    if busy_timeout_ms is not None:

        @event.listens_for(engine.sync_engine, "connect")
        def _no_busy_wait(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.close()

    return engine


async def test_sqlite_writers_take_turns_in_the_order_they_asked(tmp_path: Path) -> None:
    # no busy timeout at all: a writer that met the write lock held would fail at once
    # ("database is locked"); with turns none meets it, and they commit first come first
    engine = await _sqlite(tmp_path, busy_timeout_ms=0)
    factory = session_factory(engine)
    order: list[int] = []
    try:
        async with transaction(factory) as session:
            session.add(Vm(name="turns", vmid=71_000, status="stopped"))
        first_holds = asyncio.Event()
        release = asyncio.Event()

        async def write(i: int) -> None:
            async with transaction(factory) as session:
                vm = await session.scalar(select(Vm).where(Vm.vmid == 71_000))
                assert vm is not None
                if i == 0:
                    first_holds.set()
                    await release.wait()
                await asyncio.sleep(0)  # the others interleave between read and write
                vm.status = f"w{i}"
                order.append(i)

        tasks = [asyncio.create_task(write(0))]
        await first_holds.wait()
        for i in range(1, 10):
            tasks.append(asyncio.create_task(write(i)))
            await asyncio.sleep(0.01)  # each has asked for its turn before the next
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [r for r in results if r is not None] == []
        assert order == list(range(10))
    finally:
        await engine.dispose()


async def test_sqlite_reading_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    engine = await _sqlite(tmp_path)
    factory = session_factory(engine)
    try:
        async with transaction(factory) as session:
            session.add(Vm(name="reader", vmid=71_001, status="stopped"))
        async with transaction(factory) as writer:
            await writer.execute(update(Vm).where(Vm.vmid == 71_001).values(status="running"))

            async def read() -> str | None:
                async with reading(factory) as session:
                    return await session.scalar(select(Vm.status).where(Vm.vmid == 71_001))

            # with the write lock held, a reader that queued for it would wait 30 s here
            assert await asyncio.wait_for(read(), timeout=10) == "stopped"
        assert await asyncio.wait_for(read(), timeout=10) == "running"
    finally:
        await engine.dispose()


async def test_sqlite_reading_refuses_a_write(tmp_path: Path) -> None:
    engine = await _sqlite(tmp_path)
    factory = session_factory(engine)
    try:
        async with transaction(factory) as session:
            session.add(Vm(name="ro", vmid=71_002, status="stopped"))
        with pytest.raises(ReadOnlyWrite):
            async with reading(factory) as session:
                await session.execute(update(Vm).where(Vm.vmid == 71_002).values(status="x"))
        async with transaction(factory) as session:  # the connection is usable again
            vm = await session.scalar(select(Vm).where(Vm.vmid == 71_002))
            assert vm is not None
            assert vm.status == "stopped"
            vm.status = "running"
    finally:
        await engine.dispose()
