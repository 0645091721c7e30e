"""SnapshotStore in the SQL database (the embedded default, when MONGODB_URL is unset).

The adapter owns its transactions, like the MongoDB one: a snapshot write is its own
unit of work, independent of the caller's session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import SnapshotMeta, SnapshotResource
from openvle_core.snapshot.base import DiffingSnapshotStore, WritePlan
from openvle_core.snapshot.port import Resource

META_KEY = "snapshot"
DELETE_CHUNK = 500


class SqlSnapshotStore(DiffingSnapshotStore):
    """Tables `snapshot_resources` (indexed on type, node, pool) and `snapshot_meta`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self._sessions = sessions

    async def get(self, resource_id: str) -> Resource | None:
        """One resource by its PVE id, or None."""
        async with self._sessions() as session:
            row = await session.get(SnapshotResource, resource_id)
            return None if row is None else dict(row.data)

    async def list(
        self, *, type: str | None = None, node: str | None = None, pool: str | None = None
    ) -> list[Resource]:
        """Resources matching every given filter, ordered by id."""
        stmt = select(SnapshotResource.data).order_by(SnapshotResource.id)
        for column, value in (("type", type), ("node", node), ("pool", pool)):
            if value is not None:
                stmt = stmt.where(getattr(SnapshotResource, column) == value)
        async with self._sessions() as session:
            return [dict(data) for data in (await session.scalars(stmt)).all()]

    async def synced_at(self) -> datetime | None:
        """When the stored snapshot was taken."""
        async with self._sessions() as session:
            meta = await session.get(SnapshotMeta, META_KEY)
            return None if meta is None else meta.synced_at

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Nothing to close: the engine belongs to the caller."""

    async def _stored_token(self) -> str | None:
        async with self._sessions() as session:
            stmt = select(SnapshotMeta.token).where(SnapshotMeta.key == META_KEY)
            return await session.scalar(stmt)

    async def _load_all(self) -> dict[str, Resource]:
        stmt = select(SnapshotResource.id, SnapshotResource.data)
        async with self._sessions() as session:
            return {rid: dict(data) for rid, data in (await session.execute(stmt)).all()}

    async def _write(self, plan: WritePlan, synced_at: datetime, token: str) -> None:
        async with self._sessions() as session, session.begin():
            for chunk in _chunks(plan.removed, DELETE_CHUNK):
                await session.execute(
                    delete(SnapshotResource).where(SnapshotResource.id.in_(chunk))
                )
            if plan.new:
                await session.execute(insert(SnapshotResource), [_row(r) for r in plan.new])
            if plan.modified:
                await session.execute(update(SnapshotResource), [_row(r) for r in plan.modified])
            meta = await session.get(SnapshotMeta, META_KEY)
            if meta is None:
                session.add(SnapshotMeta(key=META_KEY, synced_at=synced_at, token=token))
            else:
                meta.synced_at, meta.token = synced_at, token


def _row(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": resource["id"],
        "type": str(resource.get("type", "")),
        "node": resource.get("node"),
        "pool": resource.get("pool"),
        "data": dict(resource),
    }


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
