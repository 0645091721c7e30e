"""All SQL about cluster nodes (a handful of rows, rewritten by every sync)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Node
from openvle_core.db.pagination import Page, paginate
from openvle_core.db.types import utcnow

NODE_FIELDS = ("status", "cpu", "maxcpu", "mem", "maxmem")


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
