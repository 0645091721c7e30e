"""Short transactions that retry when the database gave up on them under contention.

Concurrent inserts into a unique index (IP allocations, vmid reservations) can deadlock
on MariaDB (InnoDB gap locks): error 1213 rolls back the whole transaction, savepoints
included (so the savepoint rollback then fails with 1305). The unit of work is small and
idempotent, so it is simply run again in a fresh transaction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.session import transaction

T = TypeVar("T")
RETRYABLE_CODES = frozenset({1205, 1213, 1305})  # lock wait timeout, deadlock, savepoint gone
ATTEMPTS = 8


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
