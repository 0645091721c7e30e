"""Who runs an operation right now: a lease on the row, renewed by a heartbeat.

A job may be delivered twice (a retry, a redelivery after a crash, the recovery scan).
`claim` takes the row under a row lock: a queued operation, or a running one whose
heartbeat (`updated_at`) is older than the lease, is taken; a finished one or one with a
live runner is left alone. Waiting operations (queued behind a busy target) take the
target's guard first. `recover` re-enqueues operations whose runner died. A run that is
stopped (its worker shutting down) hands its row back: `hand_back` expires the lease at
once, so the next delivery of its job takes it instead of waiting out the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Operation
from openvle_core.db.session import in_transaction, transaction
from openvle_core.db.types import utcnow
from openvle_core.metrics import LEASE_LOST
from openvle_core.operations.errors import LeaseLost
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
        repo = OperationRepository(session)
        op = await repo.get_for_update(op_id)
        if op is None or op.state in {OperationState.SUCCEEDED, OperationState.FAILED}:
            return Claim.DONE, op
        stale = utcnow() - timedelta(seconds=runtime.lease_seconds)
        if op.state == OperationState.RUNNING and op.updated_at > stale:
            return Claim.BUSY, op
        if op.lock_key is None and op.target_id is not None and not await repo.try_lock(op):
            return Claim.BUSY, op
        await repo.mark_running(op)
        op.updated_at = utcnow()
        return Claim.TAKEN, op

    return await in_transaction(runtime.sessions, take)


async def touch(sessions: async_sessionmaker[AsyncSession], op: Operation) -> bool:
    """Renew the lease of a running operation; False if the row is no longer this run's
    (finished, or claimed again by another runner, which bumps `attempts`)."""
    async with transaction(sessions) as session:
        return await OperationRepository(session).touch(op.id, op.attempts)


@contextlib.asynccontextmanager
async def heartbeat(runtime: Runtime, op: Operation) -> AsyncIterator[None]:
    """Renew the lease every third of its length while the body runs. Once a whole lease
    passed without a successful renewal, recovery may hand the row to another runner:
    the body is cancelled and `LeaseLost` raised (counted in `openvle_lease_lost`)."""
    body = asyncio.current_task()
    lost = False

    async def beat() -> None:
        nonlocal lost
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(runtime.lease_seconds / 3)
            try:
                if await touch(runtime.sessions, op):
                    renewed = time.monotonic()
                    continue
                log.warning("lease of operation %s not renewed: the row is not ours", op.id)
            except (DBAPIError, OSError) as exc:  # a DB blip: try again next beat
                log.warning("lease of operation %s not renewed: %s", op.id, exc)
            if time.monotonic() - renewed >= runtime.lease_seconds and body is not None:
                lost = True
                LEASE_LOST.labels(op.kind).inc()
                body.cancel()
                return

    task = asyncio.create_task(beat())
    try:
        yield
    except asyncio.CancelledError:
        if lost and body is not None and body.uncancel() == 0:
            raise LeaseLost(f"lease of operation {op.id} expired; its run stopped") from None
        raise
    finally:
        task.cancel()
        # Not `suppress(CancelledError): await task`: that would also swallow a cancel
        # aimed at this task meanwhile (its closing queue), which then runs on forever.
        await asyncio.wait([task])


HAND_BACK_TIMEOUT = 5.0


async def hand_back(runtime: Runtime, op: Operation) -> None:
    """Expire this run's lease now (if the row is still this run's), so that any runner
    may take the operation at once; handlers resume from their journal. Best effort: if
    the database does not answer, the lease simply runs out."""
    expired = utcnow() - timedelta(seconds=runtime.lease_seconds)
    try:
        async with asyncio.timeout(HAND_BACK_TIMEOUT), transaction(runtime.sessions) as session:
            if await OperationRepository(session).expire_lease(op.id, op.attempts, expired):
                log.info("operation %s (%s) handed back", op.id, op.kind)
    except (DBAPIError, OSError, TimeoutError) as exc:
        log.warning("operation %s not handed back (its lease will expire): %s", op.id, exc)


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
