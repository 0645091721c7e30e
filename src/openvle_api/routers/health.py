"""GET /health/live and /health/ready (no auth: for probes)."""

from __future__ import annotations

import asyncio

from fastapi.responses import JSONResponse

from openvle_api.deps import RuntimeDep
from openvle_api.routing import api_router
from openvle_api.schemas.health import Check, Liveness, Readiness
from openvle_core.health import (
    Probe,
    check_database,
    check_queue,
    check_snapshot,
    proxmox_reachable,
)

router = api_router(prefix="/health", tags=["health"])


@router.get("/live", name="getLiveness", summary="Process is up")
async def live() -> Liveness:
    """Always ok while the process serves requests."""
    return Liveness(status="ok")


@router.get(
    "/ready",
    name="getReadiness",
    summary="Ready to serve",
    responses={503: {"model": Readiness, "description": "A dependency is not ready."}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Database, queue and snapshot store must answer; Proxmox is reported only."""
    database, queue, snapshot, proxmox = await asyncio.gather(
        check_database(runtime.sessions),
        check_queue(runtime.queue),
        check_snapshot(runtime.snapshot),
        proxmox_reachable(runtime.proxmox),
    )
    checks = {"database": database, "queue": queue, "snapshot": snapshot}
    body = Readiness(
        ready=all(c.ok for c in checks.values()),
        checks={name: _check(probe) for name, probe in checks.items()},
        proxmox=_check(proxmox),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


def _check(probe: Probe) -> Check:
    return Check(ok=probe.ok, detail=probe.reason)
