"""Every error becomes `application/problem+json` (RFC 9457); one table maps domain errors.

The table is walked along the exception's MRO, so the most specific entry wins
(`OutsidePool` is a `ProxmoxNotFound`, hence 404; `TargetBusy` a `ConflictError`, 409).
Messages of domain errors are written for people and are shown as `detail` as is;
unexpected exceptions become a 500 whose detail says nothing internal.

A dependency that is down is not a bug: a database error that means "cannot reach the
database" (`is_unavailable`) and `QueueUnavailable` answer 503 with `Retry-After`, log
one line per outage (the `availability` trackers), not a traceback per request, and are
counted in `openvle_unavailable_responses_total`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from openvle_api.messages import readable_message, validation_detail
from openvle_core.availability import DATABASE
from openvle_core.db.errors import DatabaseUnavailable, InvalidCursor
from openvle_core.db.session import is_unavailable
from openvle_core.errors import ConflictError, InvalidRequest, NotFoundError, OpenVLEError
from openvle_core.events.errors import CapacityExceeded, InvalidEvent
from openvle_core.guests.errors import IdentityMismatch
from openvle_core.metrics import UNAVAILABLE_RESPONSES
from openvle_core.operations.errors import TargetBusy
from openvle_core.proxmox.errors import (
    ProxmoxConflict,
    ProxmoxError,
    ProxmoxNotFound,
    ProxmoxUnavailable,
)
from openvle_core.queue import QueueUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 10

# domain error class -> (HTTP status, title)
ERROR_TABLE: dict[type[BaseException], tuple[int, str]] = {
    NotFoundError: (404, "Not found"),
    ProxmoxNotFound: (404, "Not found"),
    ConflictError: (409, "Conflict"),
    IdentityMismatch: (409, "Identity mismatch"),
    ProxmoxConflict: (409, "Conflict"),
    ProxmoxUnavailable: (503, "Proxmox unavailable"),
    DatabaseUnavailable: (503, "Database unavailable"),
    QueueUnavailable: (503, "Queue unavailable"),
    ProxmoxError: (502, "Proxmox error"),
    InvalidCursor: (422, "Invalid request"),
    InvalidEvent: (422, "Invalid request"),
    InvalidRequest: (422, "Invalid request"),
    OpenVLEError: (400, "Bad request"),
}

HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal server error",
    502: "Proxmox error",
    503: "Service unavailable",
}


class ApiProblem(Exception):
    """An HTTP-level problem raised by the API layer itself (auth, for instance)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response (extra members only when not None)."""
    body: dict[str, Any] = {
        "type": f"urn:openvle:problem:{code}",
        "title": title or HTTP_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def lookup(exc: BaseException) -> tuple[int, str]:
    """(status, title) of the most specific table entry for `exc`."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, HTTP_TITLES[500]


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenVLEError)
    status, title = lookup(exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidEvent):
        extra["errors"] = [{"loc": ["body", exc.field], "msg": exc.message}]
    if isinstance(exc, InvalidRequest):
        where = ["body", exc.field] if exc.field else ["body"]
        extra["errors"] = [{"loc": where, "msg": exc.message}]
    if isinstance(exc, InvalidCursor):
        extra["errors"] = [{"loc": ["query", "cursor"], "msg": exc.message}]
    if isinstance(exc, TargetBusy):
        extra["operation_id"] = exc.holder_id
    if isinstance(exc, CapacityExceeded):
        extra["problems"] = exc.problems
    if isinstance(exc, QueueUnavailable):
        UNAVAILABLE_RESPONSES.labels("redis").inc()
    code = getattr(exc, "code", "error")
    return problem_response(
        request, status, code, exc.message, title=title, headers=headers, **extra
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database cannot be reached (one log line per outage); else a 500."""
    if not is_unavailable(exc):
        return await _unexpected(request, exc)
    DATABASE.lost(exc)
    UNAVAILABLE_RESPONSES.labels("database").inc()
    unavailable = DatabaseUnavailable("the database is unavailable; try again later")
    return await _domain_error(request, unavailable)


def validation_items(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic's errors as `[{loc, msg}]`, the input never echoed (it may be a secret)."""
    return [{"loc": list(err.get("loc", ())), "msg": readable_message(err)} for err in errors]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if isinstance(exc.__cause__, json.JSONDecodeError):  # the body is not JSON at all
        return invalid_json(request, exc.__cause__)
    items = validation_items(exc.errors())
    detail = validation_detail(items)
    return problem_response(request, 422, "validation_error", detail, errors=items)


def invalid_json(request: Request, exc: json.JSONDecodeError) -> JSONResponse:
    """400 for a body that does not parse, saying where (line and column, from 1)."""
    detail = f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    return problem_response(
        request,
        400,
        "invalid_json",
        detail,
        errors=[{"loc": ["body"], "msg": f"{exc.msg} (line {exc.lineno}, column {exc.colno})"}],
        line=exc.lineno,
        column=exc.colno,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTP_TITLES.get(exc.status_code, "")
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        detail = (
            f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        )
    code = HTTP_TITLES.get(exc.status_code, "error").lower().replace(" ", "_")
    return problem_response(request, exc.status_code, code, detail, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path, sorted.

    The framework's own 405 names only the first route whose path matched, so
    `OPTIONS /api/v1/vms` would say `Allow: GET` although POST is served there too.
    """
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        route_methods = route.methods
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(request, exc.status, exc.code, exc.detail, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    detail = "an unexpected error occurred; it was logged"
    return problem_response(request, 500, "internal_error", detail)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(OpenVLEError, _domain_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(Exception, _unexpected)
