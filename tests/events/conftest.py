"""Event fixtures: a simulator over TLS, a migrated database, a Runtime (in-process).

`make_runtime` builds runtimes on one database (several = several workers); the
`services` variant runs on MariaDB with arq over real Redis, like production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator, run_simulator
from tests.engine.kit import (
    TIME_SCALE,
    sqlite_url,
)
from tests.events.kit import MakeRuntime, runtime_factory


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


@pytest.fixture
def make_runtime(sim: Simulator, database_url: str) -> MakeRuntime:
    """Embedded default: SQLite and the in-process queue."""
    return runtime_factory(sim, database_url, None)


@pytest.fixture
async def runtime(make_runtime: MakeRuntime) -> AsyncIterator[Runtime]:
    async with make_runtime() as rt:
        yield rt
