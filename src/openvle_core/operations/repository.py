"""All SQL about operations, including the DB-level "one in flight per target" guard.

An operation that holds its target has `lock_key = "<type>:<id>"`; the column is unique,
so a second holder is impossible on any backend. `finish()` clears the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.conflicts import run_unless_conflict
from openvle_core.db.enums import IN_FLIGHT_STATES, OperationState
from openvle_core.db.models import Operation
from openvle_core.db.pagination import Page, paginate
from openvle_core.db.types import utcnow
from openvle_core.operations.errors import OperationNotFound, TargetBusy
from openvle_core.operations.kinds import OperationKind

_IN_FLIGHT = [s.value for s in IN_FLIGHT_STATES]


def lock_key(target_type: str, target_id: str | None) -> str:
    """The guard key of a target."""
    return f"{target_type}:{target_id}"


class OperationRepository:
    """Operation rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        kind: OperationKind,
        target_type: str,
        target_id: str | None,
        *,
        params: dict[str, Any] | None = None,
        exclusive: bool = True,
        parent_id: str | None = None,
        total: int = 0,
    ) -> Operation:
        """Stage a queued operation; if `exclusive`, TargetBusy while another holds the target."""
        op = Operation(
            kind=kind,
            target_type=target_type,
            target_id=target_id,
            params=params or {},
            parent_id=parent_id,
            progress_total=total,
            lock_key=lock_key(target_type, target_id) if exclusive else None,
        )

        async def insert() -> None:
            self.session.add(op)
            await self.session.flush()

        if not await run_unless_conflict(self.session, insert):
            holder = await self.holder(target_type, target_id)
            raise TargetBusy(
                f"{target_type} {target_id} is busy with operation "
                f"{holder.id if holder else '(finishing)'} ({holder.kind if holder else '?'})",
                holder.id if holder else None,
            )
        return op

    async def try_lock(self, op: Operation) -> bool:
        """Take the target's guard for a queued operation that waited; False if held."""

        async def take() -> None:
            op.lock_key = lock_key(op.target_type, op.target_id)
            await self.session.flush()

        if await run_unless_conflict(self.session, take):
            return True
        await self.session.refresh(op)
        return False

    async def holder(self, target_type: str, target_id: str | None) -> Operation | None:
        """The operation holding the target's guard, if any."""
        key = lock_key(target_type, target_id)
        return await self.session.scalar(select(Operation).where(Operation.lock_key == key))

    async def get_for_update(self, op_id: str) -> Operation | None:
        """The operation with this id, its row locked until the transaction ends."""
        stmt = select(Operation).where(Operation.id == op_id).with_for_update()
        return await self.session.scalar(stmt)

    async def expire_lease(self, op_id: str, attempts: int, at: datetime) -> bool:
        """Set a running operation's heartbeat to `at` (back in time: a stopped run hands
        it back; now: `touch`); False unless it is still running as attempt `attempts`."""
        stmt = (
            update(Operation)
            .where(
                Operation.id == op_id,
                Operation.state == OperationState.RUNNING.value,
                Operation.attempts == attempts,
            )
            .values(updated_at=at)
        )
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))

    async def touch(self, op_id: str, attempts: int) -> bool:
        """Renew a running operation's heartbeat; False unless it is still running as
        attempt `attempts` (finished, or claimed again by another runner)."""
        return await self.expire_lease(op_id, attempts, utcnow())

    async def next_waiting(self, op: Operation) -> str | None:
        """The oldest queued operation waiting (without the guard) for `op`'s target."""
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
        return await self.session.scalar(stmt)

    async def get(self, op_id: str) -> Operation | None:
        """The operation with this id, or None."""
        return await self.session.get(Operation, op_id)

    async def require(self, op_id: str) -> Operation:
        """The operation with this id; OperationNotFound otherwise."""
        op = await self.get(op_id)
        if op is None:
            raise OperationNotFound(f"operation {op_id} not found")
        return op

    async def list(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        target: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Operation]:
        """A page of operations, newest first; `target` is a target id."""
        stmt = select(Operation)
        if state is not None:
            stmt = stmt.where(Operation.state == state)
        if kind is not None:
            stmt = stmt.where(Operation.kind == kind)
        if target is not None:
            stmt = stmt.where(Operation.target_id == target)
        return await paginate(
            self.session, stmt, Operation.id, limit=limit, cursor=cursor, descending=True
        )

    async def many(self, op_ids: Sequence[str]) -> Sequence[Operation]:
        """The operations with these ids (those that exist), in no particular order."""
        if not op_ids:
            return []
        stmt = select(Operation).where(Operation.id.in_(list(op_ids)))
        return (await self.session.scalars(stmt)).all()

    async def children(self, parent_id: str) -> Sequence[Operation]:
        """The child operations of a batch (deploy: one per VM), oldest first."""
        stmt = select(Operation).where(Operation.parent_id == parent_id).order_by(Operation.id)
        return (await self.session.scalars(stmt)).all()

    async def newest_child(self, parent_id: str, target_id: str) -> Operation | None:
        """The newest child operation of a batch for one target (its VM), or None."""
        stmt = (
            select(Operation)
            .where(Operation.parent_id == parent_id, Operation.target_id == target_id)
            .order_by(Operation.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt)

    async def busy_targets(self, target_type: str) -> set[str]:
        """Ids of targets of that type with an operation queued or running (sync skips them)."""
        stmt = select(Operation.target_id).where(
            Operation.target_type == target_type, Operation.state.in_(_IN_FLIGHT)
        )
        return {t for t in (await self.session.scalars(stmt.distinct())).all() if t is not None}

    async def finished_since(self, target_type: str, since: datetime) -> set[str]:
        """Ids of targets of that type whose operation finished at or after `since` (the
        sync leaves them alone while Proxmox's lagging resource view catches up)."""
        stmt = select(Operation.target_id).where(
            Operation.target_type == target_type, Operation.finished_at >= since
        )
        return {t for t in (await self.session.scalars(stmt.distinct())).all() if t is not None}

    async def recent_durations(self, kind: str, limit: int = 200) -> Sequence[float]:
        """Seconds from start to finish of the latest succeeded operations of `kind`."""
        stmt = (
            select(Operation.started_at, Operation.finished_at)
            .where(
                Operation.kind == kind,
                Operation.state == OperationState.SUCCEEDED.value,
                Operation.started_at.is_not(None),
                Operation.finished_at.is_not(None),
            )
            .order_by(Operation.finished_at.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            (end - start).total_seconds()
            for start, end in rows
            if start is not None and end is not None and end >= start
        ]

    async def failed_with(self, target_type: str, error_type: str, since: datetime) -> set[str]:
        """Ids of targets of that type whose operation failed with `error_type` (the error
        class's name) at or after `since`."""
        stmt = select(Operation.target_id).where(
            Operation.target_type == target_type,
            Operation.finished_at >= since,
            Operation.state == OperationState.FAILED.value,
            Operation.error_type == error_type,
        )
        return {t for t in (await self.session.scalars(stmt.distinct())).all() if t is not None}

    async def unfinished(self) -> Sequence[Operation]:
        """Operations queued or running (recovery after a crash re-enqueues them)."""
        stmt = select(Operation).where(Operation.state.in_(_IN_FLIGHT)).order_by(Operation.id)
        return (await self.session.scalars(stmt)).all()

    async def mark_running(self, op: Operation) -> None:
        """A run starts: state running, one more attempt, first start time kept."""
        op.state = OperationState.RUNNING.value
        op.attempts += 1
        op.started_at = op.started_at or utcnow()
        await self.session.flush()

    async def set_progress(self, op_id: str, done: int, total: int | None = None) -> None:
        """Record progress without loading the row (many children report it)."""
        values: dict[str, Any] = {"progress_done": done, "updated_at": utcnow()}
        if total is not None:
            values["progress_total"] = total
        stmt = update(Operation).where(Operation.id == op_id).values(**values)
        await self.session.execute(stmt.execution_options(synchronize_session="fetch"))

    async def add_upid(self, op: Operation, upid: str) -> None:
        """Remember a Proxmox task started for this operation."""
        op.upids = [*op.upids, upid]
        await self.session.flush()

    async def finish(
        self,
        op: Operation,
        state: OperationState,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        result: dict[str, Any] | None = None,
        when: datetime | None = None,
    ) -> None:
        """End the operation (succeeded or failed) and release its target."""
        op.state = state.value
        op.error_type, op.error_message = error_type, error_message
        op.result = result if result is not None else op.result
        op.finished_at = when or utcnow()
        op.lock_key = None
        await self.session.flush()
