"""`openvle api`: uvicorn with production defaults (workers, proxy headers, our logging).

With `--workers N` (N > 1) uvicorn starts N processes that each build the app from the
environment through `app_from_env`; that needs REDIS_URL, since the embedded default
(in-process queue and scheduler on SQLite) must run in exactly one process. Their metrics
are summed at every scrape through prometheus_client's multiprocess mode: the command
points PROMETHEUS_MULTIPROC_DIR at a directory of its own (a fresh temporary one, or the
operator's, emptied first) before the processes start, and each process marks itself
dead there when it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from openvle_core.settings import Settings, load_settings


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings and logging from the environment."""
    from openvle_api.app import create_app
    from openvle_core.logging import setup_logging

    settings = load_settings()
    setup_logging(settings)
    if os.environ.get(MULTIPROC_ENV):  # this process's live gauges leave the sum with it
        from prometheus_client import multiprocess

        atexit.register(multiprocess.mark_process_dead, os.getpid())
    return create_app(settings)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[Path]:
    """PROMETHEUS_MULTIPROC_DIR for the processes about to start: the operator's, emptied
    of an earlier run's files, or a temporary one removed at the end."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # an earlier run's counters must not be summed in
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="openvle-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


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
        with multiprocess_dir():
            uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
        return
    from openvle_api.app import create_app

    uvicorn.run(create_app(settings), **options)
