"""GET /operations, GET /operations/{id}, the VMs of an event deploy or archive, and an
operation's live progress as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from openvle_api.deps import API_PREFIX, Paging, ReadAuth, RuntimeDep, Uow, read_sessions
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.common import Page
from openvle_api.schemas.operations import BatchVmOut, OperationOut, batch_vm_out, operation_out
from openvle_api.sse import SSE_HEADERS, SSE_RESPONSE, operation_events
from openvle_api.state import app_state
from openvle_core.db.enums import OperationState
from openvle_core.events.progress import vm_progress
from openvle_core.events.queries import batch_vms
from openvle_core.operations import queries

router = api_router(prefix=f"{API_PREFIX}/operations", tags=["operations"])


@router.get("", name="listOperations", responses=READ_ERRORS, summary="List operations")
async def list_operations(
    uow: Uow,
    _: ReadAuth,
    paging: Paging,
    state: Annotated[OperationState | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=32, examples=["vm.clone"])] = None,
    target: Annotated[str | None, Query(max_length=64, description="A target id.")] = None,
) -> Page[OperationOut]:
    """Operations matching every given filter, newest first."""
    page = await queries.list_operations(
        uow.session,
        state=state,
        kind=kind,
        target=target,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    items = [operation_out(op) for op in page.items]
    return Page[OperationOut](items=items, next_cursor=page.next_cursor)


@router.get("/{op_id}", name="getOperation", responses=ONE_ERRORS, summary="Get an operation")
async def get_operation(op_id: str, uow: Uow, _: ReadAuth) -> OperationOut:
    """One operation: kind, state, progress, error, timestamps."""
    return operation_out(await queries.get_operation(uow.session, op_id))


@router.get(
    "/{op_id}/vms",
    name="listOperationVms",
    responses=ONE_ERRORS,
    summary="The VMs of an event deploy or archive",
)
async def list_operation_vms(op_id: str, uow: Uow, _: ReadAuth) -> list[BatchVmOut]:
    """Each VM of the event with its phase (queued, cloning, configuring, starting,
    running, failed with the reason) and IPv4; empty for other kinds of operation."""
    batch = await batch_vms(uow.session, await queries.get_operation(uow.session, op_id))
    return [] if batch is None else [batch_vm_out(vm) for vm in vm_progress(batch)]


@router.get(
    "/{op_id}/events",
    name="streamOperationEvents",
    responses={**SSE_RESPONSE, **ONE_ERRORS},
    response_class=StreamingResponse,
    summary="Stream an operation's progress",
)
async def stream_operation(
    request: Request, op_id: str, uow: Uow, _: ReadAuth, runtime: RuntimeDep
) -> StreamingResponse:
    """Server-Sent Events: `progress` and `state` events with the operation as data.

    The stream starts with the current state and ends after the operation finished. For
    an event deploy or archive, `vm` events carry each VM as `/operations/{id}/vms` lists
    it (all at first, then each one that changed) and `vm_removed` events the id of one
    that is gone (deleted by the archive); they come before the `state` that ends it.
    """
    await queries.get_operation(uow.session, op_id)  # 404 before the stream starts
    return StreamingResponse(
        operation_events(
            read_sessions(request, runtime),
            op_id,
            app_state(request).shutdown,
            app_state(request).sse_poll,
        ),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
