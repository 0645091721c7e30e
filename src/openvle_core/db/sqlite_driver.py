"""SQLAlchemy's aiosqlite adapter with one trip to the driver's thread per statement.

aiosqlite runs each sqlite3 call in a thread of its own, and SQLAlchemy's adapter makes
a call for each DBAPI step: make a cursor, execute, fetch the rows, close the cursor; and
the pool's rollback when a connection comes back, also after a commit. Each trip costs
a hand-over to that thread and back (a queue, a wake-up of the event loop through its
self-pipe, the GIL twice), which took more of an event deploy's CPU than the SQL itself.

Here a statement is one trip: the thread makes the cursor, executes, fetches every row
(as SQLAlchemy's adapter does for a client-side cursor), reads `description`, `rowcount`
and `lastrowid`, and closes the cursor; and the pool's rollback makes no trip when the
connection is in no transaction (sqlite3's own rollback would do nothing then) and no
statement of it is on its way (one sent before a cancellation may still begin one).
A unit of work that reads one row makes 3 trips instead of 9. Rows, errors and their
types are those of the sqlite3 calls, as before (the same exceptions, raised through
SQLAlchemy's handling). Server-side cursors (`stream`) keep the adapter's own cursor.

`create_engine` uses it for `sqlite+aiosqlite` URLs (`module=`, no other dialect, no URL
change); docs/explanation/benchmarks.md has the measurements.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, Sequence[Any], int, int | None]


def _run(
    adapted: OneTripConnection,
    connection: sqlite3.Connection,
    operation: str,
    parameters: Any,
    many: bool,
) -> _Outcome:
    """In the driver's thread: the whole statement, cursor to close."""
    try:
        cursor = connection.cursor()
        try:
            if many:
                cursor.executemany(operation, parameters)
            elif parameters is None:
                cursor.execute(operation)
            else:
                cursor.execute(operation, parameters)
            description = cursor.description
            rows = cursor.fetchall() if description else ()
            return description, rows, cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()
    finally:
        adapted.done += 1  # written here only (aiosqlite's thread, or the caller's inline)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose `execute` is one trip (see the module docstring)."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: OneTripConnection) -> None:
        # no driver cursor: each statement makes and closes its own in the thread
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # nothing open: the rows are here already

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._send(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._send(operation, seq_of_parameters, many=True)

    def _send(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapted = self._adapt_connection
        assert isinstance(adapted, OneTripConnection)
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            connection = driver._conn  # ValueError when closed, as aiosqlite's own calls
            if driver._running:  # else `_execute` raises before sending anything
                adapted.sent += 1  # written on the event loop's side only
            outcome: _Outcome = await_(
                driver._execute(  # type: ignore[no-untyped-call]
                    _run, adapted, connection, operation, parameters, many
                )
            )
        except Exception as error:
            adapted._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """The adapter's connection with `OneTripCursor` and a rollback that makes no trip
    when there is nothing to roll back."""

    __slots__ = ("done", "sent")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        # statements sent to the thread, and done there: each counter has one writer
        self.sent = 0
        self.done = 0

    def rollback(self) -> None:
        driver = self._connection._connection
        if driver is not None and self.sent == self.done and not driver.in_transaction:
            return
        super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The adapter's DBAPI module, whose connections are `OneTripConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """The module to give `create_async_engine(module=...)` for a sqlite+aiosqlite URL."""
    return OneTripDBAPI(aiosqlite, sqlite3)
