"""The API's read-only SQLite engine: deferred transactions, queries on the loop's thread.

On SQLite the shared engine's transactions take the write lock up front (BEGIN
IMMEDIATE), and aiosqlite runs every call on a worker thread. For the GET requests of
the API both are costly: each read would queue for the write lock, and under load each
thread hop waits for the GIL. Reads here use deferred transactions (WAL lets them run
beside the one writer and never makes them wait for it) and run each sqlite3 call
directly on the event loop's thread, where a primary-key lookup takes microseconds.
The busy timeout is short, since a wait would block the loop (WAL readers do not wait
in normal operation).

The hottest reads (one VM, a page of VMs) skip even that: `SQLiteRowReader` runs their
Core statements on a plain, synchronous SQLAlchemy engine over the same file (query_only
connections, one statement = one implicit read transaction), on the loop's thread as
above but without the async adaptation's greenlet switches (~30 us instead of ~130 us
for a primary-key read). On other databases (MariaDB) they use `create_row_engine`'s
pool: autocommit, no ping on checkout and no ROLLBACK on return, so one round trip per
read instead of three.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import aiosqlite
import sqlalchemy
from sqlalchemy import Executable, Row, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from openvle_core.db.session import create_engine

READ_BUSY_TIMEOUT_MS = 200


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run at once on the caller's thread."""

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def _connect(path: str) -> sqlite3.Connection:
    # made on aiosqlite's thread, used on the loop's: hence check_same_thread=False
    return sqlite3.connect(path, timeout=READ_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)


def _sqlite_file(url: str) -> str:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise ValueError("a read engine needs an SQLite file, not an in-memory database")
    return path


def create_read_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """A read-only engine on the same SQLite file as `url`."""
    path = _sqlite_file(url)

    async def creator() -> InlineConnection:
        connection: InlineConnection = await InlineConnection(partial(_connect, path), 64)  # type: ignore[assignment]  # aiosqlite types __await__ as the base class
        return connection

    engine = create_engine(url, pool_size=pool_size, immediate=False, async_creator=creator)

    @event.listens_for(engine.sync_engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


def _connect_query_only(path: str) -> sqlite3.Connection:
    connection = _connect(path)
    connection.execute("PRAGMA query_only=ON")  # this engine never writes
    return connection


class SQLiteRowReader:
    """A RowReader on a synchronous engine over the same SQLite file (see the module doc)."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        path = _sqlite_file(url)
        self.engine: Engine = sqlalchemy.create_engine(
            "sqlite://",  # the file is opened by the creator
            creator=partial(_connect_query_only, path),
            poolclass=QueuePool,
            pool_size=pool_size,
        )

    async def rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """All rows of `stmt`; the sqlite3 calls run right here, on the loop's thread."""
        with self.engine.connect() as connection:
            return connection.execute(stmt, params).all()

    async def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()


def create_row_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """A pool for single-statement reads on a server database (MariaDB).

    Autocommit: each SELECT is a consistent read of its own, and there is no transaction
    to end. A connection the server dropped fails one read, which EngineRowReader retries
    on a fresh one (instead of pinging before every read).
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=3600,
        pool_reset_on_return=None,
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
    )
