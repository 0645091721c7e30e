"""Read side of events: an event with its template ids, pages of them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Event, EventTemplate
from openvle_core.db.pagination import Page
from openvle_core.events.repository import EventRepository


@dataclass(frozen=True, slots=True)
class EventView:
    """An event row and the ids of the templates it deploys, in order."""

    event: Event
    template_ids: list[str]


async def get_event(session: AsyncSession, event_id: str) -> EventView:
    """The event with this id and its templates; EventNotFound otherwise."""
    repo = EventRepository(session)
    event = await repo.require(event_id)
    return EventView(event, await repo.template_ids(event.id))


async def list_events(
    session: AsyncSession,
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[EventView]:
    """A page of events (optionally of one status), oldest first, with their templates."""
    page = await EventRepository(session).list(status=status, limit=limit, cursor=cursor)
    links = await _template_ids_of(session, [e.id for e in page.items])
    return Page([EventView(e, links.get(e.id, [])) for e in page.items], page.next_cursor)


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
