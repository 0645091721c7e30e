"""Unique constraints as guards: try an insert or update inside a savepoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Base


async def add_unless_conflict(session: AsyncSession, row: Base) -> bool:
    """Insert `row`; False (and the transaction still usable) if a unique key clashes."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


async def run_unless_conflict(session: AsyncSession, step: Callable[[], Awaitable[object]]) -> bool:
    """Run `step` in a savepoint; False if it violated a unique constraint."""
    try:
        async with session.begin_nested():
            await step()
    except IntegrityError:
        return False
    return True
