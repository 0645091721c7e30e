"""How an event's deploy or archive ends: the event's new status when every VM made it,
else `EventIncomplete` naming each VM that did not and why; `failed` after a crash."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import EventStatus
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.events.errors import EventIncomplete
from openvle_core.events.repository import EventRepository
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.operations.kinds import OperationKind
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.events.batch import ChildOutcome
    from openvle_core.runtime import Runtime


async def finish_event(
    sessions: async_sessionmaker[AsyncSession],
    op: Operation,
    outcomes: Sequence[ChildOutcome],
    status: EventStatus,
    **result: Any,
) -> None:
    """Record the outcome; the event takes `status` if every VM made it, else
    EventIncomplete names each VM that did not and why."""
    failed = [o for o in outcomes if not o.succeeded]
    names = await _names(sessions, [o.vm_id for o in failed])
    listed = [{"vm_id": o.vm_id, "name": names.get(o.vm_id), "error": o.error} for o in failed]
    listed.sort(key=lambda f: str(f["name"] or f["vm_id"]))
    await journal.write(sessions, op, Journal.model_validate({"failed": listed, **result}))
    if failed:
        what = "deploy" if op.kind == OperationKind.EVENT_DEPLOY else "archive"
        shown = "; ".join(f"{f['name'] or f['vm_id']}: {f['error']}" for f in listed[:20])
        more = f" (and {len(listed) - 20} more)" if len(listed) > 20 else ""
        raise EventIncomplete(f"{what} incomplete, {len(listed)} VM(s) failed: {shown}{more}")
    async with transaction(sessions) as session:
        event = await EventRepository(session).get(op.target_id or "")
        if event is not None:
            event.status = status.value


async def _names(
    sessions: async_sessionmaker[AsyncSession], vm_ids: Sequence[str]
) -> dict[str, str]:
    async with transaction(sessions) as session:
        return await VmRepository(session).names_of(vm_ids)


async def mark_failed(runtime: Runtime, op: Operation, exc: BaseException) -> None:
    """A deploy or archive that failed leaves the event `failed` (the cron archives it
    again after its end; an admin may deploy or archive it again)."""
    async with transaction(runtime.sessions) as session:
        event = await EventRepository(session).get(op.target_id or "")
        if event is not None:
            event.status = EventStatus.FAILED.value
