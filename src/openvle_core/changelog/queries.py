"""Read side of the changelog: filtered pages, and entries after an id (for streams)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.changelog.repository import ChangelogRepository
from openvle_core.db.models import ChangelogEntry
from openvle_core.db.pagination import Page


async def list_changes(
    session: AsyncSession,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ChangelogEntry]:
    """A page of entries in the order they were written."""
    return await ChangelogRepository(session).list(
        entity=entity, entity_id=entity_id, since=since, limit=limit, cursor=cursor
    )


async def changes_after(
    session: AsyncSession, last_id: int, limit: int = 500
) -> Sequence[ChangelogEntry]:
    """Entries written after `last_id`, oldest first (the changelog stream's poll)."""
    return await ChangelogRepository(session).after(last_id, limit)


async def latest_change_id(session: AsyncSession) -> int:
    """The id of the newest entry, 0 when the changelog is empty (a stream starts there)."""
    return int(await session.scalar(select(func.max(ChangelogEntry.id))) or 0)
