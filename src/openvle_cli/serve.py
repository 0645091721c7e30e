"""`openvle api`: uvicorn with production defaults (workers, proxy headers, our logging).

With `--workers N` (N > 1) uvicorn starts N processes that each build the app from the
environment through `app_from_env`; that needs REDIS_URL, since the embedded default
(in-process queue and scheduler on SQLite) must run in exactly one process.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from openvle_core.settings import Settings, load_settings


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings and logging from the environment."""
    from openvle_api.app import create_app
    from openvle_core.logging import setup_logging

    settings = load_settings()
    setup_logging(settings)
    return create_app(settings)


WORKER_HEALTHCHECK_S = 60


def serve_api(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    proxy_headers: bool = True,
    forwarded_allow_ips: str = "127.0.0.1",
) -> None:
    """Run uvicorn until SIGINT/SIGTERM; its logs go through our root handler."""
    import uvicorn

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log.level.lower(),
        "log_config": None,  # keep the root handler setup_logging installed
        "proxy_headers": proxy_headers,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
        "timeout_graceful_shutdown": 5,
    }
    if workers > 1:
        # A worker imports the whole service before it answers uvicorn's health check; on
        # a busy host that takes longer than uvicorn's 5 s default, and it would be killed.
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_S
        uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
        return
    from openvle_api.app import create_app

    uvicorn.run(create_app(settings), **options)
