"""All SQL about cluster nodes and their storages (a handful of rows, rewritten by every
sync)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Node, Storage
from openvle_core.db.pagination import Page, paginate
from openvle_core.db.types import utcnow
from openvle_core.placement.nodes import MIB, NodeFigures, StorageFigures

NODE_FIELDS = ("status", "cpu", "maxcpu", "mem", "maxmem")
STORAGE_FIELDS = ("shared", "status", "disk", "maxdisk")


class NodeRepository:
    """Node rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> Node | None:
        """The node with this name, or None."""
        return await self.session.get(Node, name)

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Node]:
        """A page of nodes, by name."""
        return await paginate(self.session, select(Node), Node.name, limit=limit, cursor=cursor)

    async def all(self) -> Sequence[Node]:
        """Every node, by name."""
        return (await self.session.scalars(select(Node).order_by(Node.name))).all()

    async def figures(self) -> Sequence[NodeFigures]:
        """Every node's figures as the last sync saw them (for a plan)."""
        return [
            NodeFigures(
                n.name, n.status == "online", n.cpu, n.maxcpu, n.mem // MIB, n.maxmem // MIB
            )
            for n in await self.all()
        ]

    async def online_names(self) -> Sequence[str]:
        """Names of the nodes the last sync saw online, sorted."""
        stmt = select(Node.name).where(Node.status == "online").order_by(Node.name)
        return (await self.session.scalars(stmt)).all()

    async def upsert_many(self, nodes: Sequence[Mapping[str, Any]]) -> Sequence[str]:
        """Insert new nodes and update changed ones (mappings keyed like the columns).

        Returns the names of nodes that were added or changed.
        """
        current = {n.name: n for n in (await self.session.scalars(select(Node))).all()}
        now = utcnow()
        new = [{**n, "updated_at": now} for n in nodes if n["name"] not in current]
        changed = [
            {**n, "updated_at": now}
            for n in nodes
            if n["name"] in current
            and any(getattr(current[n["name"]], f) != n[f] for f in NODE_FIELDS if f in n)
        ]
        if new:
            await self.session.execute(insert(Node), new)
        if changed:
            await self.session.execute(update(Node), changed)
        return [n["name"] for n in new + changed]

    async def delete(self, name: str) -> bool:
        """Forget a node (removed from the cluster); True if it existed."""
        result = await self.session.execute(delete(Node).where(Node.name == name))
        return bool(getattr(result, "rowcount", 0))


class StorageRepository:
    """Storage rows, one per (storage, node); never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> Sequence[Storage]:
        """Every storage of every node."""
        stmt = select(Storage).order_by(Storage.storage, Storage.node)
        return (await self.session.scalars(stmt)).all()

    async def figures(self) -> Sequence[StorageFigures]:
        """Every storage's room as the last sync saw it (for a plan)."""
        return [
            StorageFigures(s.storage, s.node, s.shared, max(s.maxdisk - s.disk, 0) // MIB)
            for s in await self.all()
            if s.status == "available"
        ]

    async def replace_all(self, storages: Sequence[Mapping[str, Any]]) -> None:
        """Make the table `storages` (mappings keyed like the columns), writing only what
        changed: new rows inserted, changed ones updated, vanished ones deleted."""
        current = {(s.storage, s.node): s for s in await self.all()}
        now = utcnow()
        wanted = {(s["storage"], s["node"]): s for s in storages}
        new = [{**s, "updated_at": now} for key, s in wanted.items() if key not in current]
        changed = [
            {**s, "updated_at": now}
            for key, s in wanted.items()
            if key in current and any(getattr(current[key], f) != s[f] for f in STORAGE_FIELDS)
        ]
        if new:
            await self.session.execute(insert(Storage), new)
        if changed:
            await self.session.execute(update(Storage), changed)
        for storage, node in current.keys() - wanted.keys():
            stmt = delete(Storage).where(Storage.storage == storage, Storage.node == node)
            await self.session.execute(stmt)
