"""Is a vmid in our pool? Answered from the last sync's snapshot, never from Proxmox live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import SnapshotMeta, SnapshotResource
from openvle_core.snapshot.port import Resource, SnapshotStore
from openvle_core.snapshot.sql import META_KEY, SqlSnapshotStore
from openvle_core.templates.errors import SourceNotInPool


@dataclass(frozen=True, slots=True)
class PoolView:
    """The snapshot store and the pool (PVE_VMS_POOL) whose members we may touch."""

    snapshot: SnapshotStore
    pool: str


async def require_pool_member(session: AsyncSession, view: PoolView, vmid: int) -> None:
    """Raise SourceNotInPool unless `vmid` was a VM of `view.pool` at the last sync."""
    synced_at, resource = await _lookup(session, view.snapshot, f"qemu/{vmid}")
    if synced_at is None:
        raise SourceNotInPool(
            f"VM {vmid} is not known to be in pool {view.pool}: no sync has run yet"
        )
    if resource is None or resource.get("pool") != view.pool:
        when = synced_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        raise SourceNotInPool(
            f"VM {vmid} is not a member of pool {view.pool} as of the last sync ({when})"
        )


async def _lookup(
    session: AsyncSession, snapshot: SnapshotStore, resource_id: str
) -> tuple[datetime | None, Resource | None]:
    """When the snapshot was taken and one resource of it.

    A snapshot kept in our SQL database is read in the caller's transaction: the store's
    own session would wait behind the request's SQLite write lock.
    """
    if not isinstance(snapshot, SqlSnapshotStore):
        return await snapshot.synced_at(), await snapshot.get(resource_id)
    meta = await session.get(SnapshotMeta, META_KEY)
    row = await session.get(SnapshotResource, resource_id)
    return (None if meta is None else meta.synced_at), (None if row is None else dict(row.data))
