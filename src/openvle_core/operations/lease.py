"""Who runs an operation right now: a lease on the row, renewed by a heartbeat.

A job may be delivered twice (a retry, a redelivery after a crash, the recovery scan).
`claim` takes the row under a row lock: a queued operation, or a running one whose
heartbeat (`updated_at`) is older than the lease, is taken; a finished one or one with a
live runner is left alone. Waiting operations (queued behind a busy target) take the
target's guard first. `recover` re-enqueues operations whose runner died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.engine.dbretry import in_transaction
from openvle_core.operations.repository import OperationRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

log = logging.getLogger(__name__)


class Claim(Enum):
    """The outcome of a claim."""

    TAKEN = "taken"
    DONE = "done"  # finished already (a duplicate delivery)
    BUSY = "busy"  # a live runner has it, or its target is held by another operation


async def claim(runtime: Runtime, op_id: str) -> tuple[Claim, Operation | None]:
    """Take the operation for this process if nobody else runs it."""

    async def take(session: AsyncSession) -> tuple[Claim, Operation | None]:
        stmt = select(Operation).where(Operation.id == op_id).with_for_update()
        op = await session.scalar(stmt)
        if op is None or op.state in {OperationState.SUCCEEDED, OperationState.FAILED}:
            return Claim.DONE, op
        stale = utcnow() - timedelta(seconds=runtime.lease_seconds)
        if op.state == OperationState.RUNNING and op.updated_at > stale:
            return Claim.BUSY, op
        repo = OperationRepository(session)
        if op.lock_key is None and op.target_id is not None and not await repo.try_lock(op):
            return Claim.BUSY, op
        await repo.mark_running(op)
        op.updated_at = utcnow()
        return Claim.TAKEN, op

    return await in_transaction(runtime.sessions, take)


async def touch(runtime: Runtime, op_id: str) -> None:
    """Renew the lease of a running operation."""
    async with transaction(runtime.sessions) as session:
        stmt = update(Operation).where(Operation.id == op_id).values(updated_at=utcnow())
        await session.execute(stmt)


@contextlib.asynccontextmanager
async def heartbeat(runtime: Runtime, op_id: str) -> AsyncIterator[None]:
    """Renew the lease every third of its length while the body runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(runtime.lease_seconds / 3)
            try:
                await touch(runtime, op_id)
            except (DBAPIError, OSError) as exc:  # a DB blip: try again next beat
                log.warning("lease of operation %s not renewed: %s", op_id, exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def waiting_behind(runtime: Runtime, op: Operation) -> str | None:
    """The oldest queued operation waiting for the same target, if any."""
    async with transaction(runtime.sessions) as session:
        stmt = (
            select(Operation.id)
            .where(
                Operation.target_type == op.target_type,
                Operation.target_id == op.target_id,
                Operation.state == OperationState.QUEUED.value,
                Operation.lock_key.is_(None),
                Operation.id != op.id,
            )
            .order_by(Operation.id)
            .limit(1)
        )
        return await session.scalar(stmt)


async def recoverable(runtime: Runtime) -> Sequence[tuple[str, str]]:
    """(id, dedupe key) of operations to enqueue again: running with a dead runner, or
    queued for longer than a lease. The key changes with the state, the attempt and every
    ten leases, so one operation gets at most one recovery job per bucket."""
    now = utcnow()
    stale = now - timedelta(seconds=runtime.lease_seconds)
    bucket = int(now.timestamp() // (10 * runtime.lease_seconds))
    async with transaction(runtime.sessions) as session:
        ops = await OperationRepository(session).unfinished()
        return [
            (op.id, f"recover-{op.state}-{op.attempts}-{bucket}")
            for op in ops
            if op.updated_at <= stale
        ]


async def recover(runtime: Runtime) -> int:
    """Enqueue every recoverable operation again; returns how many."""
    found = await recoverable(runtime)
    for op_id, key in found:
        await runtime.queue.enqueue(op_id, key=key)
    return len(found)
