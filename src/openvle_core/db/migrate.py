"""`upgrade_to_head(url)`: bring a database to the newest schema, safe from many replicas.

Replicas may all run `openvle migrate` at start-up. MariaDB serialises them with a named
lock (GET_LOCK) held on the migrating connection; SQLite with an exclusive file lock on
`<database>.migrate.lock`. The second runner waits, then finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from openvle_core.db.errors import MigrationLockTimeout
from openvle_core.db.session import create_engine

LOCK_NAME = "openvle_migrate"
LOCK_TIMEOUT_S = 300
_REPO_ROOT = Path(__file__).resolve().parents[3]


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
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def upgrade_to_head(url: str | URL) -> str | None:
    """Upgrade to head under the migration lock; return the revision now current."""
    return await _run_locked(url, lambda cfg: command.upgrade(cfg, "head"))


async def downgrade_to(url: str | URL, revision: str = "base") -> None:
    """Downgrade (used by tests and by operators rolling back a release)."""
    await _run_locked(url, lambda cfg: command.downgrade(cfg, revision))


async def _run_locked(url: str | URL, action: Callable[[Config], None]) -> str | None:
    parsed = make_url(url)
    engine = create_engine(parsed)
    try:
        async with _migration_lock(parsed), engine.connect() as conn:
            if parsed.get_backend_name() != "sqlite":
                await _mariadb_lock(conn)
            try:
                return await conn.run_sync(_alembic_on, action)
            finally:
                if parsed.get_backend_name() != "sqlite":
                    await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
    finally:
        await engine.dispose()


def _alembic_on(sync_conn: Connection, action: Callable[[Config], None]) -> str | None:
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    action(cfg)
    if sync_conn.in_transaction():
        sync_conn.commit()
    return MigrationContext.configure(sync_conn).get_current_revision()


async def _mariadb_lock(conn: AsyncConnection) -> None:
    got = await conn.scalar(text("SELECT GET_LOCK(:n, :t)"), {"n": LOCK_NAME, "t": LOCK_TIMEOUT_S})
    await conn.commit()
    if got != 1:
        raise MigrationLockTimeout(f"migration lock {LOCK_NAME!r} not acquired in time")


@asynccontextmanager
async def _migration_lock(url: URL) -> AsyncIterator[None]:
    """An exclusive file lock beside a SQLite database file (no-op otherwise)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    fd = os.open(f"{database}.migrate.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
