"""GET /health/live and /health/ready (no auth: for probes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from openvle_api.deps import RuntimeDep
from openvle_api.schemas import Check, Liveness, Readiness
from openvle_core.queue import ArqQueue
from openvle_core.runtime import Runtime

router = APIRouter(prefix="/health", tags=["health"])
CHECK_TIMEOUT = 3.0


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
    checks = dict(
        zip(
            ("database", "queue", "snapshot"),
            await asyncio.gather(_database(runtime), _queue(runtime), _snapshot(runtime)),
            strict=True,
        )
    )
    body = Readiness(
        ready=all(c.ok for c in checks.values()), checks=checks, proxmox=await _proxmox(runtime)
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


async def _guard(probe: Awaitable[object]) -> Check:
    """Run a probe with a timeout; any failure is the check's detail, not a 500."""
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:  # a probe reports every failure; that is its whole job
        return Check(ok=False, detail=f"{type(exc).__name__}: {str(exc)[:200]}")
    return Check(ok=True)


async def _database(runtime: Runtime) -> Check:
    async def probe() -> None:
        async with runtime.sessions() as session:
            await session.execute(text("SELECT 1"))

    return await _guard(probe())


async def _queue(runtime: Runtime) -> Check:
    queue = runtime.queue
    if isinstance(queue, ArqQueue):
        return await _guard(queue.pool.ping())
    return Check(ok=True, detail="in-process")


async def _snapshot(runtime: Runtime) -> Check:
    return await _guard(runtime.snapshot.ping())


async def _proxmox(runtime: Runtime) -> Check:
    check = await _guard(runtime.proxmox.version())
    return check if not check.ok else Check(ok=True, detail="reachable")
