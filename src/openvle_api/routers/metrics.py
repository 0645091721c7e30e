"""GET /metrics: Prometheus text format, open or behind METRICS_TOKEN."""

from __future__ import annotations

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from openvle_api.deps import RuntimeDep, read_sessions
from openvle_api.errors import ApiProblem
from openvle_api.metrics import scrape_registry
from openvle_api.responses import problems
from openvle_api.routing import api_router
from openvle_core.health import queue_depth
from openvle_core.metrics import QUEUE_DEPTH, bearer_token_ok, exposition
from openvle_core.operations.queries import count_by_kind_and_state

router = api_router(tags=["metrics"])


@router.get(
    "/metrics",
    name="getMetrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problems(401),
    },
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """HTTP, operation, sync, Proxmox and queue metrics (bearer METRICS_TOKEN if set)."""
    _check_token(request, runtime.settings.api.metrics_token)
    async with read_sessions(request, runtime)() as session:
        counts = await count_by_kind_and_state(session)
    depth = await queue_depth(runtime.queue)
    if depth is not None:  # None: the in-process queue keeps the gauge itself
        QUEUE_DEPTH.set(depth)
    body = exposition(scrape_registry(counts))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_token(request: Request, expected: SecretStr | None) -> None:
    if not bearer_token_ok(request.headers.get("authorization"), expected):
        raise ApiProblem(
            401,
            "unauthorized",
            "/metrics needs Authorization: Bearer <METRICS_TOKEN>",
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
