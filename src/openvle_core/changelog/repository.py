"""All SQL about the changelog: bulk inserts from the sync, filtered pages for the API."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import ChangeSource
from openvle_core.db.models import ChangelogEntry
from openvle_core.db.pagination import Page, paginate
from openvle_core.db.types import utcnow


@dataclass(frozen=True, slots=True)
class Change:
    """One changed field, before it is written."""

    entity: str
    entity_id: str
    field: str
    old: str | None
    new: str | None
    source: ChangeSource = ChangeSource.SYNC
    time: datetime = dataclasses.field(default_factory=utcnow)


class ChangelogRepository:
    """Changelog rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, changes: Sequence[Change]) -> int:
        """Insert every change in one executemany; returns how many."""
        if not changes:
            return 0
        rows = [
            {
                "entity": c.entity,
                "entity_id": c.entity_id,
                "field": c.field,
                "old": c.old,
                "new": c.new,
                "source": c.source.value,
                "time": c.time,
            }
            for c in changes
        ]
        await self.session.execute(insert(ChangelogEntry), rows)
        return len(rows)

    async def list(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ChangelogEntry]:
        """A page of entries in the order they were written, filtered."""
        stmt = select(ChangelogEntry)
        if entity is not None:
            stmt = stmt.where(ChangelogEntry.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(ChangelogEntry.entity_id == entity_id)
        if since is not None:
            stmt = stmt.where(ChangelogEntry.time >= since)
        return await paginate(self.session, stmt, ChangelogEntry.id, limit=limit, cursor=cursor)

    async def after(self, last_id: int, limit: int = 500) -> Sequence[ChangelogEntry]:
        """Entries written after `last_id` (the changelog stream polls with this)."""
        stmt = (
            select(ChangelogEntry)
            .where(ChangelogEntry.id > last_id)
            .order_by(ChangelogEntry.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()
