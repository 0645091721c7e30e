"""Create, change and delete events, with the domain's rules (never commits).

The rules: the slug is 4-8 of `[a-z0-9_-]`, 1-1000 participants, name and description
free of control and bidirectional formatting characters (line breaks and tabs pass in
the description), the end after the start and not yet past (an event that is over is
refused, not archived a minute later), every template known, and once an event left
`scheduled` only its name, description and end may change; an event with VMs cannot be
deleted. `open_event` also stages the deploy of an event that is already running (its
deploy time, `starts_at` minus the lead time, has come), so it does not wait for the
schedule's next tick.

Deploy and archive are staged here too (`request_deploy`, `request_archive`): the status
moves with a conditional UPDATE (`... WHERE status IN (allowed)`), so of two workers or
requests racing for the same event exactly one wins; the operation holds the event's
target guard, so a deploy and an archive of one event never run at once (`TargetBusy`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import EventStatus
from openvle_core.db.models import Event, Operation
from openvle_core.db.types import utcnow
from openvle_core.events.errors import CapacityExceeded, EventBusy, InvalidEvent
from openvle_core.events.plan import plan_event
from openvle_core.events.queries import EventView
from openvle_core.events.repository import EventRepository
from openvle_core.names import text_problem
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.settings import Settings
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository

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
    now: datetime | None = None,
) -> EventView:
    """Stage a new scheduled event; InvalidEvent or SlugTaken when it cannot be.

    `now` (default: the current time) is what `ends_at` must lie after.
    """
    _check_fields(slug=slug, participants=participants)
    _check_text(name=name, description=description)
    _check_times(starts_at, ends_at)
    _check_not_over(ends_at, now or utcnow())
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


@dataclass(frozen=True)
class OpenedEvent:
    """A new event, and the deploy staged with it when it is already running."""

    view: EventView
    deploy: Operation | None


async def open_event(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None, **fields: Any
) -> OpenedEvent:
    """`create_event`, plus its deploy when its deploy time (`starts_at` less
    `WORKER_EVENT_LEAD_TIME`) has come.

    The schedule would deploy such an event at its next tick; staging the deploy in the
    same transaction makes it start at once and leaves the tick nothing to do. When it
    does not fit, it is created all the same, waiting with the reason in `status_reason`
    (the schedule checks again at every tick).
    """
    now = now or utcnow()
    view = await create_event(session, now=now, **fields)
    lead = timedelta(seconds=settings.worker.event_lead_time)
    if fields["starts_at"] - lead > now:
        return OpenedEvent(view, None)
    try:
        deploy = await request_deploy(session, settings, view.event.id, allowed=CRON_DEPLOYABLE)
    except CapacityExceeded as exc:
        view.event.status_reason = exc.message
        return OpenedEvent(view, None)
    return OpenedEvent(view, deploy)


async def update_event(
    session: AsyncSession, event_id: str, *, now: datetime | None = None, **changes: Any
) -> EventView:
    """Apply the given fields (None values are ignored); `template_ids` replaces the list.

    A new `ends_at` must not be past (`now`, default the current time): to end an event
    now, archive it.
    """
    repo = EventRepository(session)
    event = await repo.require(event_id)
    changes = {k: v for k, v in changes.items() if v is not None}
    if event.status != EventStatus.SCHEDULED and set(changes) - EDITABLE_AFTER_SCHEDULING:
        fields = ", ".join(sorted(set(changes) - EDITABLE_AFTER_SCHEDULING))
        raise EventBusy(f"event {event.slug} is {event.status}: {fields} can no longer change")
    _check_fields(slug=changes.get("slug"), participants=changes.get("participants"))
    _check_text(name=changes.get("name"), description=changes.get("description"))
    _check_times(changes.get("starts_at", event.starts_at), changes.get("ends_at", event.ends_at))
    if "ends_at" in changes:
        _check_not_over(changes["ends_at"], now or utcnow())
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


def _check_text(*, name: str | None, description: str | None) -> None:
    for field, text, multiline in (("name", name, False), ("description", description, True)):
        problem = text_problem(text or "", multiline=multiline)
        if problem:
            raise InvalidEvent(f"{field} {problem}", field)


def _check_not_over(ends_at: datetime, now: datetime) -> None:
    if ends_at <= now:
        raise InvalidEvent(
            f"ends_at {ends_at.isoformat()} is already past: an event that is over cannot "
            "be scheduled (to end a running event now, archive it)",
            "ends_at",
        )


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
