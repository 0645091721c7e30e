"""The MariaDB migration lock: one `openvle migrate` at a time across replicas.

Two kinds, chosen by `DATABASE_MIGRATE_LOCK` (`auto` picks by the server):

- `advisory`: `GET_LOCK` held on the migrating connection; the server frees it when the
  connection drops. Single servers and asynchronous replication.
- `table`: a lease row in `openvle_migrate_lock`, taken by a conditional UPDATE in a
  committed transaction of its own. Galera refuses `GET_LOCK` (it is not replicated;
  MDEV-30473), but it replicates and certifies this row: two nodes taking it at once
  both commit locally, one write set wins certification and the other fails with a
  deadlock error and tries again. The holder renews its lease every `lease / 4` seconds;
  a holder that died frees it when the lease ends (server time, `UTC_TIMESTAMP`).

`auto` takes `table` when `wsrep_on` is ON (a Galera node), else `advisory`; an advisory
lock the server refuses as unsupported also falls back to the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openvle_core.db.errors import MigrationLockTimeout

log = logging.getLogger("openvle_core.db.migrate")

LOCK_NAME = "openvle_migrate"
LOCK_TABLE = "openvle_migrate_lock"
LOCK_TIMEOUT_S = 300.0
LEASE_S = 60.0
POLL_S = 1.0
# MariaDB error codes: a lost certification or a row-lock deadlock (try again), a lock
# wait timeout (try again), a feature refused (GET_LOCK on Galera).
_RETRY_CODES = {1213, 1205}
NOT_SUPPORTED = 1235


class LockKind(StrEnum):
    """How `openvle migrate` serialises replicas on MariaDB."""

    AUTO = "auto"
    ADVISORY = "advisory"
    TABLE = "table"


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic's autogenerate filter: the lock table belongs to no model or migration."""
    return not (type_ == "table" and name == LOCK_TABLE)


def error_code(exc: DBAPIError) -> int | None:
    """The MariaDB error number of a driver error (None if it has none)."""
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


async def is_galera(conn: AsyncConnection) -> bool:
    """True on a Galera node (`wsrep_on` ON); False on a plain server."""
    row = (await conn.execute(text("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'"))).first()
    await conn.commit()
    return row is not None and str(row[1]).upper() == "ON"


async def choose(conn: AsyncConnection, kind: LockKind) -> tuple[LockKind, bool]:
    """The lock kind to take and whether the server is a Galera node."""
    galera = await is_galera(conn)
    if kind is LockKind.AUTO:
        kind = LockKind.TABLE if galera else LockKind.ADVISORY
    return kind, galera


@contextlib.asynccontextmanager
async def advisory_lock(conn: AsyncConnection, wait: float) -> AsyncIterator[None]:
    """GET_LOCK on `conn` for the block (raises DBAPIError 1235 where refused)."""
    got = await conn.scalar(text("SELECT GET_LOCK(:n, :t)"), {"n": LOCK_NAME, "t": wait})
    await conn.commit()
    if got != 1:
        raise MigrationLockTimeout(f"migration lock {LOCK_NAME!r} not acquired in {wait:g} s")
    try:
        yield
    finally:
        await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
        await conn.commit()


def owner_id() -> str:
    """Who holds the table lock: host, process and a token (shown to those who wait)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class TableLock:
    """The lease row in `openvle_migrate_lock` (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, *, lease: float = LEASE_S, poll: float = POLL_S):
        self.engine = engine
        self.lease = lease
        self.poll = poll
        self.owner = owner_id()
        self.lost = False

    async def ensure_table(self) -> None:
        """Create the table and its one row if missing (idempotent, safe concurrently)."""
        async with self.engine.connect() as conn:
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} ("
                    " id INT NOT NULL PRIMARY KEY,"
                    " owner VARCHAR(80) NULL,"
                    " expires_at DATETIME(6) NULL"
                    ") ENGINE=InnoDB"
                )
            )
            await conn.execute(text(f"INSERT IGNORE INTO {LOCK_TABLE} (id) VALUES (1)"))
            await conn.commit()

    async def try_take(self) -> bool:
        """One attempt: True if the row is now ours (free, or its holder's lease ended)."""
        async with self.engine.connect() as conn:
            try:
                result = await conn.execute(
                    text(
                        f"UPDATE {LOCK_TABLE} SET owner = :owner,"
                        " expires_at = UTC_TIMESTAMP(6) + INTERVAL :us MICROSECOND"
                        " WHERE id = 1 AND (owner IS NULL OR expires_at < UTC_TIMESTAMP(6))"
                    ),
                    {"owner": self.owner, "us": int(self.lease * 1e6)},
                )
                await conn.commit()
            except DBAPIError as exc:
                if error_code(exc) in _RETRY_CODES:  # another node's take won certification
                    return False
                raise
            return result.rowcount == 1

    async def holder(self) -> tuple[str | None, object]:
        """The current holder and the end of its lease (UTC)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(text(f"SELECT owner, expires_at FROM {LOCK_TABLE} WHERE id = 1"))
            ).first()
            await conn.commit()
        return (row[0], row[1]) if row is not None else (None, None)

    async def renew(self) -> bool:
        """Extend our lease; False if the row is no longer ours."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                text(
                    f"UPDATE {LOCK_TABLE} SET"
                    " expires_at = UTC_TIMESTAMP(6) + INTERVAL :us MICROSECOND"
                    " WHERE id = 1 AND owner = :owner"
                ),
                {"owner": self.owner, "us": int(self.lease * 1e6)},
            )
            await conn.commit()
        return result.rowcount == 1

    async def release(self) -> None:
        """Free the row if it is still ours."""
        async with self.engine.connect() as conn:
            await conn.execute(
                text(
                    f"UPDATE {LOCK_TABLE} SET owner = NULL, expires_at = NULL"
                    " WHERE id = 1 AND owner = :owner"
                ),
                {"owner": self.owner},
            )
            await conn.commit()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                if await self.renew():
                    continue
            except DBAPIError as exc:  # a blip: the lease outlasts three missed renewals
                log.warning("migration lock: renewal failed (%s); trying again", exc.orig)
                continue
            self.lost = True
            log.error("migration lock: lease of %s lost to another runner", self.owner)
            return

    @contextlib.asynccontextmanager
    async def held(self, wait: float) -> AsyncIterator[None]:
        """Take the row (waiting up to `wait` s), renew it for the block, free it."""
        await self.ensure_table()
        deadline = time.monotonic() + wait
        told = False
        while not await self.try_take():
            if time.monotonic() >= deadline:
                owner, until = await self.holder()
                raise MigrationLockTimeout(
                    f"migration lock row held by {owner} (lease until {until} UTC) "
                    f"for over {wait:g} s"
                )
            if not told:
                owner, until = await self.holder()
                log.info(
                    "waiting for the migration lock held by %s (lease until %s UTC)", owner, until
                )
                told = True
            await asyncio.sleep(self.poll)
        log.info("migration lock taken by %s (table, lease %g s)", self.owner, self.lease)
        renewer = asyncio.create_task(self._renew_forever())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await self.release()
