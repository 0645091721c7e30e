"""202 Accepted for mutations: enqueue after the commit, point `Location` at the operation."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from openvle_api.deps import API_PREFIX, UnitOfWork
from openvle_api.responses import problems
from openvle_api.schemas.operations import OperationOut, operation_out
from openvle_core.db.models import Operation

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: the operation is queued; follow `Location`.",
        "headers": {
            "Location": {
                "description": "The operation's URL.",
                "schema": {"type": "string", "example": f"{API_PREFIX}/operations/..."},
            }
        },
    }
}
MUTATION_ERRORS = {**ACCEPTED, **problems(400, 401, 403, 404, 409, 422, 503)}


def accepted(uow: UnitOfWork, response: Response, op: Operation) -> OperationOut:
    """Queue `op` for after the commit and describe it, with its Location."""
    uow.enqueue_after_commit(op.id)
    response.headers["Location"] = f"{API_PREFIX}/operations/{op.id}"
    return operation_out(op)
