"""GET /nodes, GET /nodes/{name}."""

from __future__ import annotations

from openvle_api.deps import API_PREFIX, Paging, ReadAuth, Uow
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.common import Page
from openvle_api.schemas.nodes import NodeOut, node_out
from openvle_core.nodes import queries

router = api_router(prefix=f"{API_PREFIX}/nodes", tags=["nodes"])


@router.get("", name="listNodes", responses=READ_ERRORS, summary="List nodes")
async def list_nodes(uow: Uow, _: ReadAuth, paging: Paging) -> Page[NodeOut]:
    """Cluster nodes found by the sync, by name, with how many of our VMs each holds."""
    page = await queries.list_nodes(uow.session, limit=paging.limit, cursor=paging.cursor)
    counts = await queries.vm_counts(uow.session, [n.name for n in page.items])
    items = [node_out(n, counts.get(n.name, 0)) for n in page.items]
    return Page[NodeOut](items=items, next_cursor=page.next_cursor)


@router.get("/{name}", name="getNode", responses=ONE_ERRORS, summary="Get a node")
async def get_node(name: str, uow: Uow, _: ReadAuth) -> NodeOut:
    """One node: status, cpu, maxcpu, mem, maxmem, and our VMs on it."""
    node = await queries.get_node(uow.session, name)
    return node_out(node, (await queries.vm_counts(uow.session, [name])).get(name, 0))
