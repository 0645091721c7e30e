"""All SQL about events and the templates they deploy."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.conflicts import run_unless_conflict
from openvle_core.db.enums import EventStatus
from openvle_core.db.models import Event, EventTemplate
from openvle_core.db.pagination import Page, paginate
from openvle_core.db.types import utcnow
from openvle_core.events.errors import EventNotFound, SlugTaken


class EventRepository:
    """Event rows and their template lists; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, event_id: str) -> Event | None:
        """The event with this id, or None."""
        return await self.session.get(Event, event_id)

    async def require(self, event_id: str) -> Event:
        """The event with this id; EventNotFound otherwise."""
        event = await self.get(event_id)
        if event is None:
            raise EventNotFound(f"event {event_id} not found")
        return event

    async def get_by_slug(self, slug: str) -> Event | None:
        """The event with this slug, or None."""
        return await self.session.scalar(select(Event).where(Event.slug == slug))

    async def add(self, event: Event, template_ids: Sequence[str]) -> Event:
        """Stage a new event with its templates; SlugTaken if the slug is in use."""

        async def insert() -> None:
            self.session.add(event)
            await self.session.flush()

        if not await run_unless_conflict(self.session, insert):
            raise SlugTaken(f"an event with slug {event.slug!r} already exists")
        await self.set_templates(event.id, template_ids)
        return event

    async def update(self, event: Event, **fields: object) -> Event:
        """Change fields of a loaded event; SlugTaken if the new slug is in use."""
        unknown = set(fields) - set(Event.__table__.columns.keys())
        if unknown:
            raise AttributeError(f"events have no column(s) {sorted(unknown)}")

        async def apply() -> None:
            # inside the savepoint, so a clash rolls the object back too
            for name, value in fields.items():
                setattr(event, name, value)
            await self.session.flush()

        if not await run_unless_conflict(self.session, apply):
            raise SlugTaken(f"an event with slug {fields.get('slug')!r} already exists")
        return event

    async def move_status(
        self, event: Event, to: EventStatus, allowed: Collection[EventStatus]
    ) -> bool:
        """Set the status if it is still one of `allowed` in the database (a conditional
        UPDATE: of two racing movers exactly one wins); False, and `event` refreshed, if not."""
        stmt = (
            update(Event)
            .where(Event.id == event.id, Event.status.in_([s.value for s in allowed]))
            .values(status=to.value, updated_at=utcnow())
            .execution_options(synchronize_session="fetch")
        )
        if getattr(await self.session.execute(stmt), "rowcount", 0):
            return True
        await self.session.refresh(event)
        return False

    async def set_status_reason(self, event_id: str, reason: str | None) -> None:
        """Say why the event waits in its status (None: clear it)."""
        stmt = update(Event).where(Event.id == event_id).values(status_reason=reason)
        await self.session.execute(stmt.execution_options(synchronize_session="fetch"))

    async def set_templates(self, event_id: str, template_ids: Sequence[str]) -> None:
        """Replace the event's templates, keeping the given order."""
        await self.session.execute(delete(EventTemplate).where(EventTemplate.event_id == event_id))
        self.session.add_all(
            EventTemplate(event_id=event_id, template_id=tid, position=i)
            for i, tid in enumerate(dict.fromkeys(template_ids))
        )
        await self.session.flush()

    async def template_ids(self, event_id: str) -> list[str]:
        """The event's template ids, in order."""
        stmt = (
            select(EventTemplate.template_id)
            .where(EventTemplate.event_id == event_id)
            .order_by(EventTemplate.position)
        )
        return list((await self.session.scalars(stmt)).all())

    async def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Event]:
        """A page of events, oldest first."""
        stmt = select(Event)
        if status is not None:
            stmt = stmt.where(Event.status == status)
        return await paginate(self.session, stmt, Event.id, limit=limit, cursor=cursor)

    async def due_for_deploy(self, now: datetime, lead: timedelta) -> Sequence[Event]:
        """Scheduled events whose start (minus the lead time) has come and not yet ended."""
        stmt = select(Event).where(
            Event.status == EventStatus.SCHEDULED.value,
            Event.starts_at <= now + lead,
            Event.ends_at > now,
        )
        return (await self.session.scalars(stmt.order_by(Event.starts_at))).all()

    async def due_for_archive(self, now: datetime, transition: timedelta) -> Sequence[Event]:
        """Events not archived whose end plus the transition period has passed."""
        stmt = select(Event).where(
            Event.status.not_in([EventStatus.ARCHIVED.value, EventStatus.ARCHIVING.value]),
            Event.ends_at <= now - transition,
        )
        return (await self.session.scalars(stmt.order_by(Event.ends_at))).all()

    async def delete(self, event_id: str) -> bool:
        """Delete the event (its template links go with it); True if it existed."""
        result = await self.session.execute(delete(Event).where(Event.id == event_id))
        return bool(getattr(result, "rowcount", 0))
