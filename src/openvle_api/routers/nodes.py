"""GET /nodes, GET /nodes/{name}."""

from __future__ import annotations

from openvle_api.deps import API_PREFIX, Paging, ReadAuth, Uow
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.common import Page
from openvle_api.schemas.nodes import NodeOut
from openvle_core.nodes import queries

router = api_router(prefix=f"{API_PREFIX}/nodes", tags=["nodes"])


@router.get("", name="listNodes", responses=READ_ERRORS, summary="List nodes")
async def list_nodes(uow: Uow, _: ReadAuth, paging: Paging) -> Page[NodeOut]:
    """Cluster nodes found by the sync, by name."""
    page = await queries.list_nodes(uow.session, limit=paging.limit, cursor=paging.cursor)
    items = [NodeOut.model_validate(n) for n in page.items]
    return Page[NodeOut](items=items, next_cursor=page.next_cursor)


@router.get("/{name}", name="getNode", responses=ONE_ERRORS, summary="Get a node")
async def get_node(name: str, uow: Uow, _: ReadAuth) -> NodeOut:
    """One node: status, cpu, maxcpu, mem, maxmem."""
    return NodeOut.model_validate(await queries.get_node(uow.session, name))
