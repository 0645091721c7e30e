"""The worker's own HTTP port (WORKER_METRICS_PORT, 0 = off): `/metrics`, `/health/live`,
`/health/ready`.

The sync, the clone slots and most Proxmox calls run in the worker, so its counters are
only seen here. A tiny Starlette app served by uvicorn inside the worker's event loop
(no process, no thread of its own); uvicorn's signal handling is left to arq. /metrics
follows the API's rule (`openvle_core.metrics.bearer_token_ok`: open unless METRICS_TOKEN
is set); the health paths are open, for probes. Ready = the database and Redis answer
(the only inputs a worker needs before it can take a job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openvle_core.health import Probe, check_database, check_queue, queue_depth
from openvle_core.metrics import QUEUE_DEPTH, bearer_token_ok, exposition
from openvle_worker.resilience import polling_problem, polling_state

if TYPE_CHECKING:
    import uvicorn

    from openvle_core.runtime import Runtime

log = logging.getLogger(__name__)


def probe_app(runtime: Runtime) -> Starlette:
    """The three routes over `runtime` (its database sessions and its queue)."""

    async def metrics(request: Request) -> Response:
        if not bearer_token_ok(
            request.headers.get("authorization"), runtime.settings.api.metrics_token
        ):
            return JSONResponse(
                {
                    "type": "urn:openvle:problem:unauthorized",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "/metrics needs Authorization: Bearer <METRICS_TOKEN>",
                },
                status_code=401,
                media_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        depth = await queue_depth(runtime.queue)
        if depth is not None:
            QUEUE_DEPTH.set(depth)
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        database, queue = await asyncio.gather(
            check_database(runtime.sessions), check_queue(runtime.queue)
        )
        checks = {"database": database, "queue": queue}
        polling = polling_state()
        if polling is not None:  # an arq worker: is its poll loop getting through to Redis?
            checks["polling"] = Probe(polling, polling_problem())
        ok = all(probe.ok for probe in checks.values())
        body = {"ready": ok, "checks": {name: _check(p) for name, p in checks.items()}}
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/health/live", live),
            Route("/health/ready", ready),
        ]
    )


def _check(probe: Probe) -> dict[str, object]:
    return {"ok": probe.ok, "detail": probe.reason}


def quiet_server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn that leaves SIGINT/SIGTERM to its host process (the worker: arq stops it,
    then this server; `openvle demo` stops it when it stops itself)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


@contextlib.asynccontextmanager
async def serve_probes(runtime: Runtime) -> AsyncIterator[int | None]:
    """Serve the probe app on WORKER_METRICS_HOST:WORKER_METRICS_PORT while the body runs;
    yields the port (None when it is 0, i.e. off). A port that cannot be bound stops the
    start-up with uvicorn's error logged (SystemExit from uvicorn becomes OSError)."""
    import uvicorn

    worker = runtime.settings.worker
    if worker.metrics_port == 0:
        yield None
        return
    config = uvicorn.Config(
        probe_app(runtime),
        host=worker.metrics_host,
        port=worker.metrics_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    server = quiet_server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # bounded by the bind: a failed bind ends the task
        if task.done():
            with contextlib.suppress(SystemExit, Exception):
                task.result()
            raise OSError(
                f"cannot serve worker metrics on {worker.metrics_host}:{worker.metrics_port}"
            )
        await asyncio.sleep(0.01)
    log.info("worker metrics on http://%s:%d/metrics", worker.metrics_host, worker.metrics_port)
    try:
        yield worker.metrics_port
    finally:
        server.should_exit = True
        await asyncio.wait([task])
