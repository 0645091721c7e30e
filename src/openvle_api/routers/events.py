"""GET/POST /events, GET/PATCH/DELETE /events/{id}, POST /events/{id}/deploy|archive (202),
POST /events/{id}/plan (a dry run)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from openvle_api.accepted import MUTATION_ERRORS, accepted
from openvle_api.deps import (
    API_PREFIX,
    AdminAuth,
    Paging,
    ReadAuth,
    RuntimeDep,
    Uow,
    read_sessions,
)
from openvle_api.responses import ONE_ERRORS, READ_ERRORS, problems
from openvle_api.routing import api_router
from openvle_api.schemas.common import Page
from openvle_api.schemas.events import (
    EventCreated,
    EventIn,
    EventOut,
    EventPatch,
    EventPlanOut,
    event_out,
    plan_out,
)
from openvle_api.schemas.operations import OperationOut
from openvle_core.db.enums import EventStatus
from openvle_core.events import plan as planning
from openvle_core.events import queries, service

router = api_router(prefix=f"{API_PREFIX}/events", tags=["events"])


@router.get("", name="listEvents", responses=READ_ERRORS, summary="List events")
async def list_events(
    uow: Uow,
    _: ReadAuth,
    paging: Paging,
    status: Annotated[EventStatus | None, Query()] = None,
) -> Page[EventOut]:
    """Events, oldest first, with their templates."""
    page = await queries.list_events(
        uow.session, status=status, limit=paging.limit, cursor=paging.cursor
    )
    return Page[EventOut](items=[event_out(v) for v in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    name="createEvent",
    status_code=201,
    responses=problems(400, 401, 403, 409, 422),
    summary="Create an event",
)
async def create_event(
    body: EventIn, uow: Uow, _: AdminAuth, runtime: RuntimeDep, response: Response
) -> EventCreated:
    """A new event; 409 when the slug is taken, 422 for an unknown template or an end
    already past. An event already running (its start, less WORKER_EVENT_LEAD_TIME, has
    come) is deployed at once: status `deploying`, `deploy_operation_id` set; when it does
    not fit it stays `scheduled` with the plan's problems in `status_reason`."""
    opened = await service.open_event(uow.session, runtime.settings, **body.model_dump())
    response.headers["Location"] = f"/api/v1/events/{opened.view.event.id}"
    deploy_id = None
    if opened.deploy is not None:
        uow.enqueue_after_commit(opened.deploy.id)
        deploy_id = opened.deploy.id
    return EventCreated(**event_out(opened.view).model_dump(), deploy_operation_id=deploy_id)


@router.get("/{event_id}", name="getEvent", responses=ONE_ERRORS, summary="Get an event")
async def get_event(event_id: str, uow: Uow, _: ReadAuth) -> EventOut:
    """One event with its templates."""
    return event_out(await queries.get_event(uow.session, event_id))


@router.patch(
    "/{event_id}",
    name="updateEvent",
    responses=problems(400, 401, 403, 404, 409, 422),
    summary="Change an event",
)
async def update_event(event_id: str, body: EventPatch, uow: Uow, _: AdminAuth) -> EventOut:
    """Change the given fields; after scheduling only name, description and ends_at."""
    changes = body.model_dump(exclude_unset=True)
    return event_out(await service.update_event(uow.session, event_id, **changes))


@router.delete(
    "/{event_id}",
    name="deleteEvent",
    status_code=204,
    responses=problems(400, 401, 403, 404, 409, 422),
    summary="Delete an event",
)
async def delete_event(event_id: str, uow: Uow, _: AdminAuth) -> Response:
    """Delete an event without VMs (archive a deployed one first)."""
    await service.delete_event(uow.session, event_id)
    return Response(status_code=204)


@router.post(
    "/{event_id}/deploy",
    name="deployEvent",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Deploy an event",
)
async def deploy_event(
    event_id: str,
    uow: Uow,
    _: AdminAuth,
    runtime: RuntimeDep,
    response: Response,
    force: Annotated[
        bool, Query(description="Deploy even when the plan does not fit (409 otherwise).")
    ] = False,
) -> OperationOut:
    """Queue the deploy: one VM per participant per template, cloned into the pool, SMBIOS
    set, started, IP read, HA added. Progress is VMs done / total; again = what is missing.
    The event's plan is checked first: 409 (`capacity`, with its `problems`) when it does
    not fit, unless `force=true`."""
    op = await service.request_deploy(uow.session, runtime.settings, event_id, force=force)
    return accepted(uow, response, op)


@router.post(
    "/{event_id}/plan",
    name="planEvent",
    responses=ONE_ERRORS,
    summary="Plan an event's deploy (dry run)",
)
async def plan_event(
    event_id: str, request: Request, runtime: RuntimeDep, _: ReadAuth
) -> EventPlanOut:
    """Will the event fit, where, and how long will it take? A dry run of its deploy (all
    its VMs, or those a re-deploy would add) against the last sync's figures: per node the
    new VMs and free memory and CPU before and after, the room full clones need, the static
    addresses (cloud-init) and an estimated duration. No side effects."""
    async with read_sessions(request, runtime)() as session:
        plan = await planning.plan_event(session, runtime.settings, event_id)
    return plan_out(plan)


@router.post(
    "/{event_id}/archive",
    name="archiveEvent",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Archive an event",
)
async def archive_event(event_id: str, uow: Uow, _: AdminAuth, response: Response) -> OperationOut:
    """Queue the archive: HA removed, VMs shut down (stopped after the timeout) and deleted,
    addresses released, the event marked archived. Safe to repeat."""
    op = await service.request_archive(uow.session, event_id)
    return accepted(uow, response, op)
