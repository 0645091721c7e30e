"""Engine and session factories: the same code for MariaDB (asyncmy) and SQLite (aiosqlite).

SQLite needs two fixes to behave like a real database: the driver's own transaction
handling is switched off so SQLAlchemy's BEGIN IMMEDIATE/SAVEPOINT work, and foreign keys plus a
busy timeout are turned on for every connection.
Its statements go through `sqlite_driver` (one trip each to aiosqlite's thread).

SQLite has one writer at a time. The transactions of one process take turns for it in
the order they asked (`WriteTurns`, an asyncio lock taken just before BEGIN IMMEDIATE and
given back when the connection returns to the pool) instead of each polling the write lock
in SQLite's busy handler, which sleeps up to 100 ms between tries while the lock sits free
(measured: 32 VMs of an event deploying at once left it free half the time). Units of
work that only read (`reading`) begin deferred: in WAL they read beside the writer and
take no turn; a write inside one raises `ReadOnlyWrite`. Other processes on the same file
still meet the busy timeout, as before.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
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
from sqlalchemy.util.concurrency import await_, in_greenlet

from openvle_core.availability import DATABASE
from openvle_core.db import sqlite_driver
from openvle_core.settings import DatabaseSettings

SQLITE_BUSY_TIMEOUT_MS = 30_000
_TURN = "openvle_write_turn"  # key, in a pooled connection's info, of the turn it holds
_READ_ONLY = "openvle_read_only"  # key: the connection's transaction began in `reading`
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_READING: ContextVar[bool] = ContextVar("openvle_db_reading", default=False)


class ReadOnlyWrite(RuntimeError):
    """A statement that writes ran in a unit of work opened with `reading` (a bug)."""


class WriteTurns:
    """The order in which one process's SQLite transactions take the write lock.

    `take` (in the engine's begin hook, before BEGIN IMMEDIATE) waits for this event
    loop's turn, first come first served; `give_back` (when the connection returns to
    the pool, is closed or invalidated) hands it to the next. A connection that holds the
    turn does not wait for it again (several transactions on one connection). After
    SQLITE_BUSY_TIMEOUT_MS without the turn, the transaction goes on to SQLite's own busy
    timeout, as without turns (a transaction that opens another while it holds the turn
    fails as it did before, "database is locked", only later).
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def take(self, info: dict[Any, Any]) -> None:
        """Wait for the turn for the connection whose pool info is `info`."""
        if _TURN in info or not in_greenlet():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: a plain sync caller, SQLite's busy timeout
            return
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        if lock.locked():
            try:
                await_(asyncio.wait_for(lock.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000))
            except TimeoutError:
                return
        else:
            await_(lock.acquire())
        info[_TURN] = (loop, lock)

    def give_back(self, info: dict[Any, Any]) -> None:
        """Hand the turn held by this connection, if any, to the next transaction."""
        held = info.pop(_TURN, None)
        if held is None:
            return
        loop, lock = held
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            lock.release()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(lock.release)


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
        if parsed.get_driver_name() == "aiosqlite":
            kwargs["module"] = sqlite_driver.dbapi()  # a statement per trip to its thread
        memory = parsed.database in (None, "", ":memory:")
        if memory:
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        engine = create_async_engine(parsed, echo=echo, **kwargs)
        # turns need a connection per transaction: not the one shared in-memory database's
        _make_sqlite_transactional(engine, immediate=immediate, turns=not memory)
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


def _make_sqlite_transactional(
    engine: AsyncEngine, *, immediate: bool = True, turns: bool = True
) -> None:
    """Let SQLAlchemy own BEGIN (so savepoints work), enable FKs, WAL and a busy timeout;
    writing transactions take turns (`WriteTurns`), reading ones begin deferred."""
    order = WriteTurns() if immediate and turns else None

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
        # fails at once with "database is locked"; so keep SQLite transactions short,
        # and begin deferred only those that never write (`reading`).
        read_only = _READING.get()
        conn.info[_READ_ONLY] = read_only
        if read_only or not immediate:
            conn.exec_driver_sql("BEGIN")
            return
        if order is not None:
            order.take(conn.info)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if order is not None:
                order.give_back(conn.info)
            raise

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _on_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get(_READ_ONLY) and statement.lstrip()[:7].upper().startswith(_WRITES):
            raise ReadOnlyWrite(f"a write in a read-only unit of work: {statement[:60]}")

    if order is None:
        return

    # the turn goes back when the connection returns to the pool (after its commit or
    # rollback), or is closed or invalidated
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "reset")
    def _on_reset(dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
        if connection_record is not None:
            order.give_back(connection_record.info)

    def _on_gone(dbapi_connection: Any, connection_record: Any) -> None:
        if connection_record is not None:
            order.give_back(connection_record.info)

    def _on_invalid(dbapi_connection: Any, connection_record: Any, exception: Any) -> None:
        if connection_record is not None:
            order.give_back(connection_record.info)

    event.listen(pool, "checkin", _on_gone)
    event.listen(pool, "close", _on_gone)
    event.listen(pool, "invalidate", _on_invalid)
    event.listen(pool, "soft_invalidate", _on_invalid)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AbstractAsyncContextManager[AsyncSession]:
    """The outermost caller's unit of work: commit on success, roll back on error."""
    return _unit_of_work(factory, read_only=False)


def reading(
    factory: async_sessionmaker[AsyncSession],
) -> AbstractAsyncContextManager[AsyncSession]:
    """A unit of work that only reads. On SQLite it begins deferred: it reads beside the
    one writer (WAL) instead of waiting for the write lock behind every other transaction;
    a statement that writes in it raises `ReadOnlyWrite`. Elsewhere: `transaction`."""
    return _unit_of_work(factory, read_only=True)


@asynccontextmanager
async def _unit_of_work(
    factory: async_sessionmaker[AsyncSession], *, read_only: bool
) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, marked read-only or not for the SQLite begin hook."""
    token = _READING.set(read_only)
    try:
        async with factory() as session, session.begin():
            yield session
    finally:
        _READING.reset(token)


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


def note_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached right now (`is_unavailable`);
    if so the outage is noted (`DATABASE.lost`: one log line per outage, the
    `openvle_dependency_up` gauge), for a caller that then skips its work quietly."""
    if not is_unavailable(exc):
        return False
    DATABASE.lost(exc)
    return True


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
