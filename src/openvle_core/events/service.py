"""Create, change and delete events, with the domain's rules (never commits).

The rules: the slug is 4-8 of `[a-z0-9_-]`, 1-1000 participants, the end after the
start, every template known, and once an event left `scheduled` only its name,
description and end may change; an event with VMs cannot be deleted.

Deploy and archive are staged here too (`request_deploy`, `request_archive`): the status
moves with a conditional UPDATE (`... WHERE status IN (allowed)`), so of two workers or
requests racing for the same event exactly one wins; the operation holds the event's
target guard, so a deploy and an archive of one event never run at once (`TargetBusy`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import EventStatus
from openvle_core.db.models import Event, Operation
from openvle_core.events.errors import CapacityExceeded, EventBusy, InvalidEvent
from openvle_core.events.plan import plan_event
from openvle_core.events.queries import EventView
from openvle_core.events.repository import EventRepository
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.settings import Settings
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    pass

SLUG_RE = re.compile(r"^[a-z0-9_-]{4,8}$")
MAX_PARTICIPANTS = 1000
EDITABLE_AFTER_SCHEDULING = frozenset({"name", "description", "ends_at"})
DELETABLE = frozenset({EventStatus.SCHEDULED, EventStatus.ARCHIVED, EventStatus.FAILED})


async def create_event(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    participants: int,
    template_ids: Sequence[str],
    description: str = "",
) -> EventView:
    """Stage a new scheduled event; InvalidEvent or SlugTaken when it cannot be."""
    _check_fields(slug=slug, participants=participants)
    _check_times(starts_at, ends_at)
    await _check_templates(session, template_ids)
    event = Event(
        slug=slug,
        name=name,
        description=description,
        starts_at=starts_at,
        ends_at=ends_at,
        participants=participants,
        status=EventStatus.SCHEDULED.value,
    )
    repo = EventRepository(session)
    await repo.add(event, template_ids)
    return EventView(event, await repo.template_ids(event.id))


async def update_event(session: AsyncSession, event_id: str, **changes: Any) -> EventView:
    """Apply the given fields (None values are ignored); `template_ids` replaces the list."""
    repo = EventRepository(session)
    event = await repo.require(event_id)
    changes = {k: v for k, v in changes.items() if v is not None}
    if event.status != EventStatus.SCHEDULED and set(changes) - EDITABLE_AFTER_SCHEDULING:
        fields = ", ".join(sorted(set(changes) - EDITABLE_AFTER_SCHEDULING))
        raise EventBusy(f"event {event.slug} is {event.status}: {fields} can no longer change")
    _check_fields(slug=changes.get("slug"), participants=changes.get("participants"))
    _check_times(changes.get("starts_at", event.starts_at), changes.get("ends_at", event.ends_at))
    template_ids = changes.pop("template_ids", None)
    if template_ids is not None:
        await _check_templates(session, template_ids)
        await repo.set_templates(event.id, template_ids)
    if changes:
        await repo.update(event, **changes)
    return EventView(event, await repo.template_ids(event.id))


async def delete_event(session: AsyncSession, event_id: str) -> None:
    """Delete an event that has no VMs and is not being deployed or archived."""
    repo = EventRepository(session)
    event = await repo.require(event_id)
    if event.status not in DELETABLE:
        raise EventBusy(f"event {event.slug} is {event.status}; archive it before deleting")
    if await VmRepository(session).for_event(event.id):
        raise EventBusy(f"event {event.slug} still has VMs; archive it before deleting")
    await repo.delete(event.id)


def _check_fields(*, slug: str | None, participants: int | None) -> None:
    if slug is not None and not SLUG_RE.match(slug):
        raise InvalidEvent("slug must be 4-8 characters of a-z, 0-9, _ and -", "slug")
    if participants is not None and not 1 <= participants <= MAX_PARTICIPANTS:
        raise InvalidEvent(f"participants must be 1-{MAX_PARTICIPANTS}", "participants")


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidEvent("times need a timezone (e.g. 2026-03-01T09:00:00Z)", "starts_at")
    if ends_at <= starts_at:
        raise InvalidEvent("ends_at must be after starts_at", "ends_at")


async def _check_templates(session: AsyncSession, template_ids: Sequence[str]) -> None:
    if not template_ids:
        raise InvalidEvent("an event needs at least one template", "template_ids")
    repo = TemplateRepository(session)
    for template_id in dict.fromkeys(template_ids):
        if await repo.get(template_id) is None:
            raise InvalidEvent(f"template {template_id} not found", "template_ids")


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
    session: AsyncSession,
    settings: Settings,
    event_id: str,
    *,
    force: bool = False,
    allowed: Collection[EventStatus] = DEPLOYABLE,
) -> Operation:
    """Stage the deploy of an event (again: only what is missing is created), once its
    plan fits (`CapacityExceeded` with the plan's problems otherwise), unless `force`."""
    event = await EventRepository(session).require(event_id)
    if not force:
        plan = await plan_event(session, settings, event.id)
        if not plan.fits:
            raise CapacityExceeded(plan.problems)
    event.status_reason = None
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
