"""The MariaDB migration lock on the real server: GET_LOCK on a plain server, the
replicated lease row that Galera needs (forced with `lock=TABLE`: no Galera cluster runs
here), its waiting, renewal and expiry; and the bounded wait for a database to appear."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from openvle_cli.main import main
from openvle_core.db.errors import DatabaseUnreachable, MigrationLockTimeout
from openvle_core.db.migrate import (
    LOCK_TABLE,
    LockKind,
    current_revision,
    head_revision,
    upgrade_to_head,
    wait_for_database,
)
from openvle_core.db.migrate_lock import TableLock, choose
from openvle_core.db.session import create_engine
from tests.support.proxy import TcpProxy
from tests.support.services import MARIADB_HOST, free_port

DbFactory = Callable[[str], Awaitable[str]]
LOGGER = "openvle_core.db.migrate"


@pytest.fixture
async def db_url(mariadb_database_factory: DbFactory) -> str:
    return await mariadb_database_factory("lock")


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {r[0] for r in (await conn.execute(text("SHOW TABLES"))).all()}
    finally:
        await engine.dispose()


async def _until(check: Callable[[], bool], what: str, tries: int = 400) -> None:
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


async def test_auto_takes_get_lock_on_a_plain_server(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await choose(conn, LockKind.AUTO) == (LockKind.ADVISORY, False)
            assert await choose(conn, LockKind.TABLE) == (LockKind.TABLE, False)
    finally:
        await engine.dispose()
    assert await upgrade_to_head(db_url) == head_revision()
    assert LOCK_TABLE not in await _tables(db_url)


async def test_two_migrates_on_the_table_lock_one_runs_the_other_finds_head(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    head = head_revision()
    results = await asyncio.gather(
        upgrade_to_head(db_url, lock=LockKind.TABLE),
        upgrade_to_head(db_url, lock=LockKind.TABLE),
    )
    assert results == [head, head]
    messages = _messages(caplog)
    assert messages.count(f"database upgraded from revision None to {head}") == 1
    assert messages.count(f"database already at revision {head}: nothing to migrate") == 1
    assert sum(m.startswith("migration lock taken by ") for m in messages) == 2
    lock = TableLock(create_engine(db_url))
    try:
        assert await lock.holder() == (None, None)  # released
    finally:
        await lock.engine.dispose()


async def test_a_held_table_lock_makes_migrate_wait(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    engine = create_engine(db_url)
    other = TableLock(engine, lease=5.0)
    try:
        async with other.held(wait=5.0):
            task = asyncio.create_task(upgrade_to_head(db_url, lock=LockKind.TABLE))
            await _until(
                lambda: any(
                    m.startswith(f"waiting for the migration lock held by {other.owner}")
                    for m in _messages(caplog)
                ),
                "the second runner waits",
            )
            assert not task.done()
            assert await current_revision(db_url) is None  # nothing migrated meanwhile
        assert await task == head_revision()
    finally:
        await engine.dispose()


async def test_the_lease_is_renewed_while_held_and_a_dead_holders_lease_expires(
    db_url: str,
) -> None:
    engine = create_engine(db_url)
    try:
        holder, rival = TableLock(engine, lease=0.4), TableLock(engine, lease=0.4)
        async with holder.held(wait=1.0):
            for _ in range(6):  # 6 x 0.2 s: three leases long; renewed, never free
                await asyncio.sleep(0.2)
                assert not await rival.try_take()
            assert (await holder.holder())[0] == holder.owner
        assert not holder.lost
        # A holder that dies (takes the row, never renews nor releases): its lease ends.
        dead = TableLock(engine, lease=0.3)
        assert await dead.try_take()
        assert not await rival.try_take()
        assert await upgrade_to_head(db_url, lock=LockKind.TABLE, lease=0.4) == head_revision()
        assert (await rival.holder())[0] is None
    finally:
        await engine.dispose()


async def test_a_lock_held_too_long_fails_naming_its_holder(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        holder = TableLock(engine, lease=30.0)
        await holder.ensure_table()
        assert await holder.try_take()
        with pytest.raises(MigrationLockTimeout, match=holder.owner):
            await upgrade_to_head(db_url, lock=LockKind.TABLE, lock_timeout=0.3)
        assert await current_revision(db_url) is None
        await holder.release()
    finally:
        await engine.dispose()


async def test_migrate_waits_for_a_database_that_appears(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A closed port first, then a proxy (ours) to MariaDB starts listening on it."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    host, _, port = MARIADB_HOST.rpartition("@")[2].partition(":")
    proxy = TcpProxy(host, int(port or 3306))
    proxy.port = free_port()  # known before it listens: closed until proxy.start()
    database = db_url.rsplit("/", 1)[1]
    via_proxy = f"mysql+asyncmy://root@127.0.0.1:{proxy.port}/{database}"
    task = asyncio.create_task(wait_for_database(via_proxy, wait=60))
    await _until(
        lambda: sum("not reachable yet" in m for m in _messages(caplog)) >= 2, "two retries"
    )
    assert not task.done()
    await proxy.start()
    try:
        attempts = await task
        assert attempts >= 3
        assert proxy.accepted >= 1
        assert f"database at 127.0.0.1:{proxy.port} reachable after {attempts} attempts" in (
            _messages(caplog)
        )
        assert await upgrade_to_head(via_proxy) == head_revision()
    finally:
        await proxy.close()


async def test_the_wait_is_bounded_and_a_lasting_refusal_is_not_retried(db_url: str) -> None:
    closed = f"mysql+asyncmy://root@127.0.0.1:{free_port()}/x"
    with pytest.raises(DatabaseUnreachable, match=r"unreachable after \d+ attempts"):
        await wait_for_database(closed, wait=0.3)
    missing = db_url.rsplit("/", 1)[0] + "/openvle_no_such_database"
    with pytest.raises(DatabaseUnreachable, match=r"after 1 attempts: .*Unknown database"):
        await wait_for_database(missing, wait=60)


def test_the_migrate_command_gives_up_after_its_wait(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"mysql+asyncmy://root@127.0.0.1:{free_port()}/x")
    assert main(["migrate", "--wait", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "migrate failed: database at 127.0.0.1:" in err
    assert "Can't connect" in err
