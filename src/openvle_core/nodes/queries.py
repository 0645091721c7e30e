"""Read side of nodes: one node, a page of nodes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Node
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
