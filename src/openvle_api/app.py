"""The FastAPI application: `create_app(settings, runtime=None)`.

The lifespan opens the process's `Runtime` (DB engine, Proxmox client, snapshot store,
job queue; with no REDIS_URL the queue runs operations in this process and the
in-process scheduler runs the periodic jobs) unless one is passed in, and closes it at
shutdown. Server-Sent Event streams end at shutdown too.

On SQLite every transaction of the shared engine takes the write lock up front, which
would queue every GET behind every other request; so the lifespan also opens a second
engine for the read-only work of GET requests, and a synchronous one for the hottest
Core reads (readdb.py). On MariaDB the hottest reads use a pool of autocommit
connections (readdb.py), everything else the shared engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.engine import make_url

from openvle_api.auth import DEFAULT_TTL, Authenticator
from openvle_api.console.router import install_console
from openvle_api.docs import install_docs
from openvle_api.errors import install_error_handlers
from openvle_api.limits import BodyLimitMiddleware
from openvle_api.metrics import HttpMetricsMiddleware
from openvle_api.openapi import build_openapi, route_id
from openvle_api.readdb import SQLiteRowReader, create_read_engine, create_row_engine
from openvle_api.routers import (
    changelog,
    events,
    health,
    home,
    metrics,
    nodes,
    operations,
    system,
    templates,
    tokens,
    vms,
)
from openvle_api.sse import POLL_SECONDS
from openvle_api.state import AppState, install_state
from openvle_core import __version__
from openvle_core.db.session import EngineRowReader, is_sqlite, session_factory
from openvle_core.handlers import run_operation
from openvle_core.runtime import Runtime, open_runtime
from openvle_core.scheduler import scheduler
from openvle_core.settings import Settings

OPENAPI_URL = "/openapi.json"


def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    auth_cache_ttl: float = DEFAULT_TTL,
    sse_poll: float = POLL_SECONDS,
) -> FastAPI:
    """The API app; with `runtime` given, the caller owns it (tests, the demo).

    `auth_cache_ttl`: seconds an accepted token is trusted without a lookup;
    `sse_poll`: seconds between the database polls of event streams.
    """

    state = AppState(settings, Authenticator(ttl=auth_cache_ttl), sse_poll, runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if runtime is None:
                opened = await stack.enter_async_context(
                    open_runtime(settings, runner=run_operation)
                )
                state.runtime = opened
                if settings.redis.url is None:  # embedded: cron jobs run in this process
                    await stack.enter_async_context(scheduler(opened))
            url = settings.database.url.get_secret_value()
            if is_sqlite(url) and make_url(url).database not in (None, "", ":memory:"):
                readers = create_read_engine(url, settings.database.pool_size)
                stack.push_async_callback(readers.dispose)
                state.read_sessions = session_factory(readers)
                row_reader = SQLiteRowReader(url, settings.database.pool_size)
                stack.push_async_callback(row_reader.dispose)
                state.row_reader = row_reader
            elif not is_sqlite(url):
                row_engine = create_row_engine(url, settings.database.pool_size)
                stack.push_async_callback(row_engine.dispose)
                state.row_reader = EngineRowReader(row_engine)
            try:
                yield
            finally:
                state.shutdown.set()
                state.row_reader = None

    app = FastAPI(
        title=f"{settings.project_name} Proxmox service",
        version=__version__,
        lifespan=lifespan,
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=route_id,
    )
    install_state(app, state)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.api.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware)
    routers = (
        nodes,
        templates,
        vms,
        events,
        operations,
        changelog,
        system,
        tokens,
        health,
        metrics,
        home,
    )
    for module in routers:
        app.include_router(module.router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]  # FastAPI's hook
    install_docs(app, OPENAPI_URL, app.title)
    install_console(app)
    return app
