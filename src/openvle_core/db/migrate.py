"""`upgrade_to_head(url)`: bring a database to the newest schema, safe from many replicas.

Replicas may all run `openvle migrate` at start-up. On MariaDB they are serialised by
the migration lock (`migrate_lock`: `GET_LOCK` on a single server, a replicated lease row
on Galera); on SQLite by an exclusive file lock on `<database>.migrate.lock`. The second
runner waits, then finds nothing left to do.

`wait_for_database(url, wait)` retries the first connection for a bounded time, so that
`openvle migrate` started beside its database (compose, systemd) waits for it to listen.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openvle_core.db.errors import DatabaseUnreachable
from openvle_core.db.migrate_lock import (
    LEASE_S,
    LOCK_NAME,
    LOCK_TABLE,
    LOCK_TIMEOUT_S,
    NOT_SUPPORTED,
    LockKind,
    TableLock,
    advisory_lock,
    choose,
    error_code,
    include_name,
)
from openvle_core.db.session import create_engine

__all__ = [
    "LOCK_NAME",
    "LOCK_TABLE",
    "LockKind",
    "alembic_config",
    "current_revision",
    "downgrade_to",
    "head_revision",
    "include_name",
    "upgrade_to_head",
    "wait_for_database",
]

log = logging.getLogger(__name__)
_REPO_ROOT = Path(__file__).resolve().parents[3]
# MariaDB client and server errors worth waiting out at start-up: no server listening,
# host not resolvable yet, connection lost, too many connections, a Galera node not yet
# synced (WSREP not ready), server shutting down.
TRANSIENT_CONNECT_CODES = frozenset({2002, 2003, 2005, 2006, 2013, 1040, 1047, 1053})
MAX_BACKOFF_S = 5.0


def alembic_config(script_location: Path | None = None) -> Config:
    """The Alembic config for our one migration chain (repository's `alembic/`)."""
    cfg = Config(str(_REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(script_location or _REPO_ROOT / "alembic"))
    return cfg


def head_revision(cfg: Config | None = None) -> str | None:
    """The newest revision of the chain."""
    return ScriptDirectory.from_config(cfg or alembic_config()).get_current_head()


async def current_revision(url: str | URL) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_revision)
    finally:
        await engine.dispose()


async def wait_for_database(url: str | URL, wait: float) -> int:
    """Connect once, retrying transient failures for up to `wait` seconds (backoff 0.5 s
    doubling to 5 s); returns the attempts made. Raises `DatabaseUnreachable` when the
    time is up, at once for a failure that waiting cannot cure (bad password, no such
    database)."""
    parsed = make_url(url)
    engine = create_engine(parsed, pool_size=1)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 3306}"
    deadline = time.monotonic() + wait
    delay, attempt = 0.5, 0
    try:
        while True:
            attempt += 1
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except DBAPIError as exc:
                reason = str(exc.orig)
                left = deadline - time.monotonic()
                if error_code(exc) not in TRANSIENT_CONNECT_CODES or left <= 0:
                    raise DatabaseUnreachable(
                        f"database at {where} unreachable after {attempt} attempts: {reason}"
                    ) from exc
                pause = min(delay, left)
                log.warning(
                    "database at %s not reachable yet (attempt %d: %s); retrying in %.1f s, "
                    "%.0f s left of --wait",
                    where,
                    attempt,
                    reason,
                    pause,
                    left,
                )
                await asyncio.sleep(pause)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            if attempt > 1:
                log.info("database at %s reachable after %d attempts", where, attempt)
            return attempt
    finally:
        await engine.dispose()


async def upgrade_to_head(
    url: str | URL,
    *,
    lock: LockKind = LockKind.AUTO,
    lock_timeout: float = LOCK_TIMEOUT_S,
    lease: float = LEASE_S,
) -> str | None:
    """Upgrade to head under the migration lock; return the revision now current."""
    before, after = await _run_locked(
        url, lambda cfg: command.upgrade(cfg, "head"), lock, lock_timeout, lease
    )
    if before == after:
        log.info("database already at revision %s: nothing to migrate", after)
    else:
        log.info("database upgraded from revision %s to %s", before, after)
    return after


async def downgrade_to(
    url: str | URL, revision: str = "base", *, lock: LockKind = LockKind.AUTO
) -> None:
    """Downgrade (used by tests and by operators rolling back a release)."""
    await _run_locked(
        url, lambda cfg: command.downgrade(cfg, revision), lock, LOCK_TIMEOUT_S, LEASE_S
    )


async def _run_locked(
    url: str | URL,
    action: Callable[[Config], None],
    kind: LockKind,
    lock_timeout: float,
    lease: float,
) -> tuple[str | None, str | None]:
    parsed = make_url(url)
    engine = create_engine(parsed)
    try:
        if parsed.get_backend_name() == "sqlite":
            async with _file_lock(parsed), engine.connect() as conn:
                return await conn.run_sync(_alembic_on, action)
        async with engine.connect() as conn, AsyncExitStack() as held:
            await _mariadb_lock(engine, conn, held, kind, lock_timeout, lease)
            return await conn.run_sync(_alembic_on, action)
    finally:
        await engine.dispose()


async def _mariadb_lock(
    engine: AsyncEngine,
    conn: AsyncConnection,
    held: AsyncExitStack,
    kind: LockKind,
    lock_timeout: float,
    lease: float,
) -> None:
    """Take the chosen lock into `held`; on Galera, make `conn` read the cluster's latest."""
    chosen, galera = await choose(conn, kind)
    if galera:  # causal reads: see every commit the cluster made before our lock
        await conn.execute(text("SET SESSION wsrep_sync_wait = 1"))
        await conn.commit()
    if chosen is LockKind.ADVISORY:
        try:
            await held.enter_async_context(advisory_lock(conn, lock_timeout))
            return
        except DBAPIError as exc:
            if kind is not LockKind.AUTO or error_code(exc) != NOT_SUPPORTED:
                raise
            await conn.rollback()
            log.warning("GET_LOCK refused (%s): taking the table lock instead", exc.orig)
    await held.enter_async_context(TableLock(engine, lease=lease).held(lock_timeout))


def _revision(sync_conn: Connection) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()


def _alembic_on(
    sync_conn: Connection, action: Callable[[Config], None]
) -> tuple[str | None, str | None]:
    before = _revision(sync_conn)
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    action(cfg)
    if sync_conn.in_transaction():
        sync_conn.commit()
    return before, _revision(sync_conn)


@asynccontextmanager
async def _file_lock(url: URL) -> AsyncIterator[None]:
    """An exclusive file lock beside a SQLite database file (no-op in memory)."""
    database = url.database
    if database in (None, "", ":memory:"):
        yield
        return
    fd = os.open(f"{database}.migrate.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
