"""Event fixtures: a simulator over TLS, a migrated database, a Runtime (in-process).

`make_runtime` builds runtimes on one database (several = several workers); the
`services` variant runs on MariaDB with arq over real Redis, like production.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.conftest import arq_worker
from engine.kit import FAST_POLL, FAST_RETRY, TIME_SCALE, make_settings, sqlite_url
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.runtime import Runtime, open_runtime
from openvle_pvesim import Simulator, run_simulator

LEASE = 2.0


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    """PVE 9.1 over TLS; a test module may set SIM_TIME_SCALE for slower tasks."""
    scale = getattr(request.module, "SIM_TIME_SCALE", TIME_SCALE)
    async with run_simulator(version="9.1", time_scale=scale, check_responses=True) as s:
        yield s
        assert s.violations == []


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    return url


MakeRuntime = Callable[..., contextlib.AbstractAsyncContextManager[Runtime]]


def runtime_factory(sim: Simulator, database_url: str, redis_url: str | None) -> MakeRuntime:
    """`async with factory(worker={...}) as runtime:` on the given database and queue."""

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[Runtime]:
        settings = make_settings(sim, database_url, redis_url=redis_url, **options)
        opened = open_runtime(
            settings,
            in_process=redis_url is None,
            lease_seconds=LEASE,
            poll=FAST_POLL,
            retry=FAST_RETRY,
        )
        async with opened as runtime:
            if redis_url is None:
                yield runtime
            else:
                async with arq_worker(settings):
                    yield runtime

    return factory


@pytest.fixture
def make_runtime(sim: Simulator, database_url: str) -> MakeRuntime:
    """Embedded default: SQLite and the in-process queue."""
    return runtime_factory(sim, database_url, None)


@pytest.fixture
async def runtime(make_runtime: MakeRuntime) -> AsyncIterator[Runtime]:
    async with make_runtime() as rt:
        yield rt
