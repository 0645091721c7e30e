"""Read side of operations: one operation, a filtered page (newest first)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Operation
from openvle_core.db.pagination import Page
from openvle_core.operations.repository import OperationRepository


async def get_operation(session: AsyncSession, op_id: str) -> Operation:
    """The operation with this id; OperationNotFound otherwise."""
    return await OperationRepository(session).require(op_id)


async def find_operation(session: AsyncSession, op_id: str) -> Operation | None:
    """The operation with this id, or None (a stream ends quietly when it is gone)."""
    return await OperationRepository(session).get(op_id)


async def list_operations(
    session: AsyncSession,
    *,
    state: str | None = None,
    kind: str | None = None,
    target: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Operation]:
    """A page of operations matching every given filter, newest first."""
    return await OperationRepository(session).list(
        state=state, kind=kind, target=target, limit=limit, cursor=cursor
    )


async def count_by_kind_and_state(session: AsyncSession) -> dict[tuple[str, str], int]:
    """How many operations there are per (kind, state): metrics read this at scrape time."""
    stmt = select(Operation.kind, Operation.state, func.count()).group_by(
        Operation.kind, Operation.state
    )
    return {(kind, state): int(n) for kind, state, n in (await session.execute(stmt)).all()}
