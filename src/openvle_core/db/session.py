"""Engine and session factories: the same code for MariaDB (asyncmy) and SQLite (aiosqlite).

SQLite needs two fixes to behave like a real database: the driver's own transaction
handling is switched off so SQLAlchemy's BEGIN IMMEDIATE/SAVEPOINT work, and foreign keys plus a
busy timeout are turned on for every connection.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Executable, Row, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from openvle_core.availability import DATABASE
from openvle_core.settings import DatabaseSettings

SQLITE_BUSY_TIMEOUT_MS = 30_000


async def ping(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Ask the database a trivial query (readiness); raises what the driver raises."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


def is_sqlite(url: str | URL) -> bool:
    """True for sqlite URLs (any driver)."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool_size: int = 10,
    immediate: bool = True,
    async_creator: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncEngine:
    """An async engine for `url`, with the per-backend settings that make both behave.

    `immediate=False` (SQLite only) makes transactions deferred: for read-only work,
    which then runs beside a writer (WAL) instead of queueing for the write lock.
    `async_creator` (SQLite only) opens the driver connections itself.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
        if async_creator is not None:
            kwargs = {"async_creator": async_creator}
        if parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        engine = create_async_engine(parsed, echo=echo, **kwargs)
        _make_sqlite_transactional(engine, immediate=immediate)
        event.listen(engine.sync_engine, "checkout", _answered)
        return engine
    engine = create_async_engine(
        parsed,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a connection the outage broke is replaced at checkout
        pool_recycle=3600,
        isolation_level="READ COMMITTED",
    )
    event.listen(engine.sync_engine, "checkout", _answered)
    return engine


def _answered(*_args: Any) -> None:
    """A connection was checked out (after its pre-ping, or freshly connected): the
    database answers, which ends an outage this process saw (one log line)."""
    DATABASE.restored()


def engine_from_settings(settings: DatabaseSettings) -> AsyncEngine:
    """The process's engine, from `DATABASE_URL`, `DATABASE_ECHO`, `DATABASE_POOL_SIZE`."""
    return create_engine(
        settings.url.get_secret_value(), echo=settings.echo, pool_size=settings.pool_size
    )


def _make_sqlite_transactional(engine: AsyncEngine, *, immediate: bool = True) -> None:
    """Let SQLAlchemy own BEGIN (so savepoints work), enable FKs, WAL and a busy timeout."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: take the write lock up front (waiting up to the busy timeout). A
        # deferred transaction that reads, then writes after another writer committed,
        # fails at once with "database is locked"; so keep SQLite transactions short.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The outermost caller's unit of work: commit on success, roll back on error."""
    async with factory() as session, session.begin():
        yield session


class RowReader(Protocol):
    """Runs one read-only Core statement and returns its rows, with no ORM session.

    For hot read paths (the API's GETs), where a session and ORM objects cost more than
    the query itself.
    """

    async def rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """All rows of `stmt` (bound with `params`)."""
        ...


class EngineRowReader:
    """A RowReader on a pooled connection of an async engine (any backend)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """All rows of `stmt`, on a connection of its own (it only reads).

        A pooled connection that went stale (an engine without pre-ping) is retried once.
        """
        try:
            return await self._rows(stmt, params)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            return await self._rows(stmt, params)

    async def _rows(self, stmt: Executable, params: Mapping[str, Any] | None) -> Sequence[Row[Any]]:
        async with self.engine.connect() as connection:
            return (await connection.execute(stmt, params)).all()


T = TypeVar("T")


RETRYABLE_CODES = frozenset({1205, 1213, 1305})  # lock wait timeout, deadlock, savepoint gone


ATTEMPTS = 8


# MySQL/MariaDB codes that mean "no database to talk to", not "your statement failed":
# client-side (cannot connect 2002/2003/2005, gone away 2006, lost 2013/2055) and
# server-side (too many connections 1040, shutdown 1053, killed 1927, idle 4031,
# a Galera node not synced 1047).
UNAVAILABLE_CODES = frozenset({1040, 1047, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached right now (an outage, a
    restart, a full pool), so that the request may succeed later: 503, not 500."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    args: tuple[object, ...] = tuple(getattr(exc.orig, "args", ()))
    if args and args[0] in UNAVAILABLE_CODES:
        return True
    cause: BaseException | None = exc.orig
    for _ in range(8):  # a socket error under the driver's own wrapping
        if cause is None:
            break
        if isinstance(cause, OSError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def is_contention(exc: DBAPIError) -> bool:
    """Whether the DB aborted the transaction because of lock contention."""
    args: tuple[object, ...] = tuple(getattr(exc.orig, "args", ()))
    return bool(args) and args[0] in RETRYABLE_CODES


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run `work(session)` in its own transaction, again after a deadlock (jittered)."""
    for attempt in range(ATTEMPTS):
        try:
            async with transaction(sessions) as session:
                return await work(session)
        except DBAPIError as exc:
            if not is_contention(exc) or attempt + 1 == ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0.0, 0.02 * 2**attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")
