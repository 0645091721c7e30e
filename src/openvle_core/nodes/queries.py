"""Read side of nodes: one node, a page of nodes, how many of our VMs each holds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Node, Vm
from openvle_core.db.pagination import Page
from openvle_core.nodes.errors import NodeNotFound
from openvle_core.nodes.repository import NodeRepository


async def get_node(session: AsyncSession, name: str) -> Node:
    """The node called `name`; NodeNotFound otherwise."""
    node = await NodeRepository(session).get(name)
    if node is None:
        raise NodeNotFound(f"node {name} not found")
    return node


async def list_nodes(
    session: AsyncSession, *, limit: int | None = None, cursor: str | None = None
) -> Page[Node]:
    """A page of nodes, by name."""
    return await NodeRepository(session).list(limit=limit, cursor=cursor)


async def vm_counts(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """How many of our VMs the DB places on each of these nodes (one grouped query)."""
    if not names:
        return {}
    stmt = select(Vm.node, func.count()).where(Vm.node.in_(list(names))).group_by(Vm.node)
    return {str(node): int(n) for node, n in (await session.execute(stmt)).all()}
