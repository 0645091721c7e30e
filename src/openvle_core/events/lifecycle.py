"""Request side of event deploy and archive: move the event's status, stage one operation.

Never commits (the caller commits, then enqueues `op.id`). The status moves with a
conditional UPDATE (`... WHERE status IN (allowed)`), so of two workers or requests racing
for the same event exactly one wins; the operation holds the event's target guard, so a
deploy and an archive of one event never run at once (`TargetBusy`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import EventStatus
from openvle_core.db.models import Event, Operation
from openvle_core.db.session import transaction
from openvle_core.events.errors import EventBusy, EventIncomplete
from openvle_core.events.repository import EventRepository
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.events.batch import ChildOutcome
    from openvle_core.runtime import Runtime

TARGET = "event"
DEPLOYABLE = frozenset({EventStatus.SCHEDULED, EventStatus.DEPLOYED, EventStatus.FAILED})
ARCHIVABLE = frozenset(EventStatus)
# What the schedule may move: exactly once per event (a later tick finds nothing to do).
CRON_DEPLOYABLE = frozenset({EventStatus.SCHEDULED})
CRON_ARCHIVABLE = ARCHIVABLE - {EventStatus.ARCHIVING, EventStatus.ARCHIVED}


async def transition(
    session: AsyncSession, event: Event, to: EventStatus, allowed: Collection[EventStatus]
) -> None:
    """Set the status if it is still one of `allowed` in the database; EventBusy if not."""
    if not await EventRepository(session).move_status(event, to, allowed):
        raise EventBusy(f"event {event.slug} is {event.status}: cannot move it to {to.value}")


async def request_deploy(
    session: AsyncSession, event_id: str, *, allowed: Collection[EventStatus] = DEPLOYABLE
) -> Operation:
    """Stage the deploy of an event (again: only what is missing is created)."""
    event = await EventRepository(session).require(event_id)
    total = event.participants * len(await EventRepository(session).template_ids(event.id))
    op = await OperationRepository(session).create(
        OperationKind.EVENT_DEPLOY, TARGET, event.id, total=total
    )
    await transition(session, event, EventStatus.DEPLOYING, allowed)
    return op


async def request_archive(
    session: AsyncSession, event_id: str, *, allowed: Collection[EventStatus] = ARCHIVABLE
) -> Operation:
    """Stage the archive of an event: its VMs go, it ends `archived` (safe to repeat)."""
    event = await EventRepository(session).require(event_id)
    op = await OperationRepository(session).create(OperationKind.EVENT_ARCHIVE, TARGET, event.id)
    await transition(session, event, EventStatus.ARCHIVING, allowed)
    return op


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
