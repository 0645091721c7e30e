"""The SQLite adapter makes one trip to aiosqlite's thread per statement, skips the pool's
rollback only when there is nothing to roll back, and answers as sqlite3 does (rows,
counts, ids, errors)."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Vm
from openvle_core.db.session import create_engine, reading, session_factory, transaction
from openvle_core.db.sqlite_driver import OneTripConnection


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[tuple[str, AsyncEngine]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'driver.sqlite3'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    try:
        yield str(tmp_path / "driver.sqlite3"), engine
    finally:
        await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Each call aiosqlite sends to its thread, by the function's name."""
    counted: collections.Counter[str] = collections.Counter()
    send = aiosqlite.core.Connection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counted[getattr(fn, "__name__", repr(fn))] += 1
        return await send(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counting)
    return counted


async def test_a_unit_of_work_makes_a_trip_per_statement(
    sqlite_file: tuple[str, AsyncEngine], trips: collections.Counter[str]
) -> None:
    _, engine = sqlite_file
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        vm = Vm(name="trips", vmid=72_000, status="stopped")
        session.add(vm)
    trips.clear()
    async with reading(sessions) as session:
        assert (await session.get(Vm, vm.id)) is not None
    # BEGIN, SELECT, COMMIT; no cursor to make or close, no rollback after the commit
    assert sum(trips.values()) == 3, trips
    trips.clear()
    async with transaction(sessions) as session:
        await session.execute(update(Vm).where(Vm.id == vm.id).values(status="running"))
    assert sum(trips.values()) == 3, trips


async def test_rows_counts_and_ids_are_sqlite3s(sqlite_file: tuple[str, AsyncEngine]) -> None:
    _, engine = sqlite_file
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        assert many.rowcount == 2
        changed = await conn.execute(text("UPDATE t SET v = 'z' WHERE id > 1"))
        assert changed.rowcount == 2
        returned = await conn.execute(text("DELETE FROM t WHERE id = 3 RETURNING id, v"))
        assert returned.all() == [(3, "z")]
        rows = await conn.execute(text("SELECT id, v FROM t ORDER BY id"))
        assert list(rows.keys()) == ["id", "v"]
        assert rows.all() == [(1, "a"), (2, "z")]
        assert (await conn.execute(text("SELECT v FROM t WHERE id = 99"))).first() is None
        # more rows than a fetch's default batch come back whole
        batch = [{"v": str(i)} for i in range(500)]
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), batch)
        assert len((await conn.execute(text("SELECT id FROM t"))).fetchmany(300)) == 300


async def test_errors_are_sqlalchemys_as_before(sqlite_file: tuple[str, AsyncEngine]) -> None:
    _, engine = sqlite_file
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        session.add(Vm(name="dup", vmid=72_001, status="stopped"))
    with pytest.raises(IntegrityError) as caught:
        async with transaction(sessions) as session:
            await session.execute(insert(Vm).values(name="dup2", vmid=72_001, status="stopped"))
    assert isinstance(caught.value.orig, sqlite3.IntegrityError)
    with pytest.raises(OperationalError, match="no such table"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM nowhere"))
    # the failed units of work were rolled back: the connections serve again
    async with reading(sessions) as session:
        names = (await session.scalars(select(Vm.name).where(Vm.vmid == 72_001))).all()
    assert names == ["dup"]


async def test_a_failed_unit_of_work_is_rolled_back(sqlite_file: tuple[str, AsyncEngine]) -> None:
    _, engine = sqlite_file
    sessions = session_factory(engine)

    async def fail_after_insert() -> None:
        async with transaction(sessions) as session:
            session.add(Vm(name="gone", vmid=72_002, status="stopped"))
            await session.flush()
            raise RuntimeError("the caller failed after the INSERT")

    with pytest.raises(RuntimeError):
        await fail_after_insert()
    async with reading(sessions) as session:
        assert await session.scalar(select(Vm).where(Vm.vmid == 72_002)) is None


async def test_a_begin_still_on_its_way_is_rolled_back_after_a_cancel(
    sqlite_file: tuple[str, AsyncEngine],
) -> None:
    # Another client holds the write lock, so our BEGIN IMMEDIATE waits in the driver's
    # thread; the unit of work is cancelled meanwhile. No connection may go back to the
    # pool inside the transaction that BEGIN starts later (SQLAlchemy closes this one;
    # the next test covers the rollback of one that would be kept).
    path, engine = sqlite_file
    sessions = session_factory(engine)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    entered = asyncio.Event()
    seen: list[OneTripConnection] = []

    async def write() -> None:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.dbapi_connection, OneTripConnection)
            seen.append(raw.dbapi_connection)
            entered.set()
            await conn.execute(text("SELECT 1"))  # its BEGIN IMMEDIATE waits for `other`

    task = asyncio.create_task(write())
    await entered.wait()
    await asyncio.sleep(0.2)  # the BEGIN is in the thread, waiting for the lock
    assert seen[0].sent > seen[0].done
    task.cancel()
    await asyncio.sleep(0.2)  # the cancel reached the unit of work: its connection closes
    other.execute("ROLLBACK")  # our BEGIN goes through now (then, rightly, a rollback)
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    connection = seen[0]
    for _ in range(100):
        if connection.sent == connection.done:
            break
        await asyncio.sleep(0.02)
    driver = connection._connection._connection
    assert driver is None or not driver.in_transaction
    async with transaction(sessions) as session:  # and the pool serves writes again
        session.add(Vm(name="after", vmid=72_100, status="stopped"))


async def test_the_rollback_trip_is_skipped_only_with_nothing_on_its_way(
    sqlite_file: tuple[str, AsyncEngine], trips: collections.Counter[str]
) -> None:
    _, engine = sqlite_file
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        adapter = raw.dbapi_connection
        assert isinstance(adapter, OneTripConnection)
        await conn.run_sync(lambda _: adapter.rollback())  # in no transaction: no trip
        assert trips["rollback"] == 0
        adapter.sent += 1  # as if a statement (a BEGIN, say) were still in the thread
        try:
            await conn.run_sync(lambda _: adapter.rollback())
        finally:
            adapter.done += 1
        assert trips["rollback"] == 1
        await conn.execute(text("SELECT 1"))  # begins a transaction: its rollback is sent
        trips.clear()
        await conn.rollback()
        assert trips["rollback"] == 1
