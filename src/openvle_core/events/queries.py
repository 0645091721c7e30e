"""Read side of events: an event with its template ids and VM counts, pages of them, and
the VMs of a deploy or archive with each one's child operation (the console's progress)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Event, EventTemplate, Operation, Vm
from openvle_core.db.pagination import Page
from openvle_core.events.repository import EventRepository
from openvle_core.operations.kinds import OperationKind

BATCH_KINDS = frozenset({OperationKind.EVENT_DEPLOY.value, OperationKind.EVENT_ARCHIVE.value})


@dataclass(frozen=True, slots=True)
class EventView:
    """An event row and the ids of the templates it deploys, in order."""

    event: Event
    template_ids: list[str]
    vm_counts: dict[str, int] = field(default_factory=dict)  # VMs per status


async def get_event(session: AsyncSession, event_id: str) -> EventView:
    """The event with this id and its templates; EventNotFound otherwise."""
    repo = EventRepository(session)
    event = await repo.require(event_id)
    counts = await _vm_counts_of(session, [event.id])
    return EventView(event, await repo.template_ids(event.id), counts.get(event.id, {}))


async def list_events(
    session: AsyncSession,
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[EventView]:
    """A page of events (optionally of one status), oldest first, with their templates."""
    page = await EventRepository(session).list(status=status, limit=limit, cursor=cursor)
    ids = [e.id for e in page.items]
    links, counts = await _template_ids_of(session, ids), await _vm_counts_of(session, ids)
    views = [EventView(e, links.get(e.id, []), counts.get(e.id, {})) for e in page.items]
    return Page(views, page.next_cursor)


async def _template_ids_of(session: AsyncSession, event_ids: Sequence[str]) -> dict[str, list[str]]:
    """Template ids per event for a whole page in one query (no N+1)."""
    if not event_ids:
        return {}
    stmt = (
        select(EventTemplate.event_id, EventTemplate.template_id)
        .where(EventTemplate.event_id.in_(list(event_ids)))
        .order_by(EventTemplate.event_id, EventTemplate.position)
    )
    out: dict[str, list[str]] = defaultdict(list)
    for event_id, template_id in (await session.execute(stmt)).all():
        out[event_id].append(template_id)
    return out


async def _vm_counts_of(
    session: AsyncSession, event_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """VMs per status per event for a whole page in one grouped query (ix on event_id)."""
    if not event_ids:
        return {}
    stmt = (
        select(Vm.event_id, Vm.status, func.count())
        .where(Vm.event_id.in_(list(event_ids)))
        .group_by(Vm.event_id, Vm.status)
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for event_id, status, n in (await session.execute(stmt)).all():
        out[str(event_id)][status] = int(n)
    return out


BATCH_VM_COLUMNS = (
    Vm.id,
    Vm.name,
    Vm.participant,
    Vm.template_id,
    Vm.node,
    Vm.vmid,
    Vm.status,
    Vm.ipv4,
    Vm.updated_at,
)


@dataclass(frozen=True, slots=True)
class BatchVms:
    """The event's VM rows (by name) and the newest child operation of the batch per VM."""

    vms: Sequence[Row[Any]]
    children: dict[str, Row[Any]]


async def batch_vms(session: AsyncSession, op: Operation) -> BatchVms | None:
    """The VMs an event deploy or archive works on, with its child per VM; None for any
    other operation. Two indexed reads (vms.event_id, operations.parent_id)."""
    if op.kind not in BATCH_KINDS or op.target_type != "event" or op.target_id is None:
        return None
    by_name = select(*BATCH_VM_COLUMNS).where(Vm.event_id == op.target_id).order_by(Vm.name)
    vms: Sequence[Row[Any]] = (await session.execute(by_name)).all()  # type: ignore[assignment]  # typed Row is invariant in its columns
    stmt = (
        select(
            Operation.target_id,
            Operation.id,
            Operation.state,
            Operation.error_type,
            Operation.error_message,
            Operation.result,
        )
        .where(Operation.parent_id == op.id)
        .order_by(Operation.id)
    )
    children = {row.target_id: row for row in (await session.execute(stmt)).all()}
    return BatchVms(vms, children)  # later children of a VM replaced earlier ones above
