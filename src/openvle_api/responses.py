"""OpenAPI documentation of error responses: each status with the Problem schema."""

from __future__ import annotations

from typing import Any

from openvle_api.errors import PROBLEM_JSON

DESCRIPTIONS = {
    400: "The request body is not valid JSON; `line` and `column` say where it breaks.",
    401: "No API token, or an unknown, revoked or expired one.",
    403: "The API token's scope is too small.",
    404: "No such entity (or it is outside OpenVLE's pool).",
    409: "The request clashes with the current state (busy, in use, taken).",
    413: "The request body is larger than API_MAX_BODY_BYTES; it was not read.",
    415: "The request body is not sent as `Content-Type: application/json`.",
    422: "A parameter or body field is invalid; `errors` lists each one.",
    502: "Proxmox answered with an error this service cannot resolve.",
    503: "Proxmox is unreachable right now; retry after `Retry-After` seconds.",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses, as problem+json."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
        }
        if status == 503:
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        out[status] = entry
    return out


READ_ERRORS = problems(401, 403, 422)
BODY_ERRORS = problems(400, 413, 415)  # every route that takes a body (see openapi.py)
ONE_ERRORS = problems(401, 403, 404, 422)
