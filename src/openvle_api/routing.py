"""Routes that authenticate before they read a body, and read only JSON.

FastAPI reads and parses a route's body before it solves the route's dependencies, so a
token checked in a dependency is checked only after the whole body sat in memory: an
unauthenticated caller could make the API read and parse as much as the body limit
allows on every request. `GuardedRoute` runs the route's scope check (`ScopeGuard`,
found among its dependencies) from the headers first, then insists on a JSON content
type (415 with a hint otherwise), and only then lets FastAPI read the body.

Every router of the API is made with `api_router()`, so each route gets this class.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from openvle_api.deps import ScopeGuard, authenticate_first
from openvle_api.errors import ApiProblem
from openvle_core.db.enums import TokenScope

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
JSON_TYPES = ("application/json",)
ACCEPT_HEADERS = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}  # RFC 5789 / W3C LDP


class GuardedRoute(APIRoute):
    """An APIRoute whose body is read only after authentication and a JSON content type."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        needed = required_scope(self.dependant)
        if self.body_field is None or needed is None:
            return handler

        async def authenticated_first(request: Request) -> Response:
            await authenticate_first(request, needed)
            require_json(request)
            return await handler(request)

        return authenticated_first


def required_scope(dependant: Dependant) -> TokenScope | None:
    """The scope a route's `ScopeGuard` needs (searched through nested dependencies)."""
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, ScopeGuard):
            return dependency.call.needed
        nested = required_scope(dependency)
        if nested is not None:
            return nested
    return None


def require_json(request: Request) -> None:
    """415 unless a request that has a body says it is JSON."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return  # no body: the route's validation says what is missing
    given = headers.get("content-type")
    media = (given or "").split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return
    got = f"got {given!r}" if given else "no Content-Type was sent"
    raise ApiProblem(
        415,
        "unsupported_media_type",
        f"send the body as JSON with 'Content-Type: application/json' ({got})",
        {ACCEPT_HEADERS[request.method]: "application/json"}
        if request.method in ACCEPT_HEADERS
        else None,
    )


def api_router(prefix: str = "", tags: list[str] | None = None) -> APIRouter:
    """An APIRouter whose routes are `GuardedRoute`s."""
    return APIRouter(prefix=prefix, tags=list(tags or []), route_class=GuardedRoute)
