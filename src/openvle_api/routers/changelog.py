"""GET /changelog (filtered pages) and GET /changelog/stream (Server-Sent Events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse

from openvle_api.deps import API_PREFIX, Paging, ReadAuth, RuntimeDep, Uow, read_sessions
from openvle_api.responses import READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.changelog import ChangeOut
from openvle_api.schemas.common import DateTime, Page
from openvle_api.sse import SSE_HEADERS, SSE_RESPONSE, changelog_events
from openvle_api.state import app_state
from openvle_core.changelog import queries

router = api_router(prefix=f"{API_PREFIX}/changelog", tags=["changelog"])


@router.get("", name="listChanges", responses=READ_ERRORS, summary="List changes")
async def list_changes(
    uow: Uow,
    _: ReadAuth,
    paging: Paging,
    entity: Annotated[str | None, Query(max_length=16, examples=["vm"])] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[DateTime | None, Query(description="Only changes at or after.")] = None,
) -> Page[ChangeOut]:
    """Every status, node and IP change, in the order written, with its source."""
    page = await queries.list_changes(
        uow.session,
        entity=entity,
        entity_id=entity_id,
        since=since,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    items = [ChangeOut.model_validate(c) for c in page.items]
    return Page[ChangeOut](items=items, next_cursor=page.next_cursor)


@router.get(
    "/stream",
    name="streamChanges",
    responses={**SSE_RESPONSE, **READ_ERRORS},
    response_class=StreamingResponse,
    summary="Stream changes",
)
async def stream_changes(
    request: Request,
    _: ReadAuth,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=0, description="Resume after this entry id.")] = None,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> StreamingResponse:
    """Server-Sent Events: one `change` event per new changelog entry (`id:` = entry id).

    Reconnecting clients send `Last-Event-ID` (or `?after=`) and miss nothing.
    """
    start = after if after is not None else last_event_id
    stop = app_state(request).shutdown
    return StreamingResponse(
        changelog_events(read_sessions(request, runtime), start, stop, app_state(request).sse_poll),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
