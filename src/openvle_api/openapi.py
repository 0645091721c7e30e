"""The OpenAPI 3.1 document, adjusted so generated clients get one error type.

FastAPI documents 422 with its own `HTTPValidationError`; every error of this API is a
`Problem` (application/problem+json), so those entries are replaced and the unused
schemas dropped. Operation ids are the routes' names (`listVms`, `getVm`, ...).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from openvle_api.errors import PROBLEM_JSON
from openvle_api.responses import BODY_ERRORS, DESCRIPTIONS
from openvle_api.schemas.common import Problem

DESCRIPTION = """\
The OpenVLE Proxmox service: templates, VMs, events and the cluster sync.

Authenticate with `Authorization: Bearer <token>` (create tokens with
`openvle token create`); scopes are ordered `read` < `operate` < `admin`.
Errors are `application/problem+json` (RFC 9457). Bodies are JSON
(`Content-Type: application/json`, else 415) of at most `API_MAX_BODY_BYTES`
(default 1 MiB, else 413, unread); authentication is checked before a body is read.
Lists take `limit` and `cursor` and return `{items, next_cursor}`. Mutations that
touch Proxmox answer `202 Accepted` with the operation and a `Location` header;
follow it, or stream `/api/v1/operations/{id}/events`.
"""

TAGS = [
    {"name": "nodes", "description": "Cluster nodes as the last sync saw them."},
    {"name": "templates", "description": "VM templates in OpenVLE's pool."},
    {"name": "vms", "description": "VMs: clone, power, migrate, delete."},
    {"name": "events", "description": "Courses, exams, workshops and their VMs."},
    {"name": "operations", "description": "Work in flight and done, with live progress."},
    {"name": "changelog", "description": "Every recorded change, and a live stream."},
    {"name": "system", "description": "Sync and Proxmox status (admin)."},
    {"name": "health", "description": "Liveness and readiness probes (no auth)."},
    {"name": "metrics", "description": "Prometheus metrics."},
]


def route_id(route: APIRoute) -> str:
    """A route's operationId: its explicit, stable name."""
    return route.name


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """Generate (once) and fix up the document."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        routes=app.routes,
        tags=TAGS,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            _fix_validation_response(operation)
            if "requestBody" in operation:
                _add_body_responses(operation)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = doc
    return doc


def _fix_validation_response(operation: dict[str, Any]) -> None:
    responses = operation.get("responses", {})
    if "422" in responses:
        responses["422"] = {
            "description": DESCRIPTIONS[422],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }


def _add_body_responses(operation: dict[str, Any]) -> None:
    """A body can be malformed (400), too large (413) or not JSON (415): say so."""
    responses = operation.setdefault("responses", {})
    for status, entry in BODY_ERRORS.items():
        responses.setdefault(str(status), entry)
    operation["responses"] = dict(sorted(responses.items()))
