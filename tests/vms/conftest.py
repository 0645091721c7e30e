"""Engine fixtures: a simulator over TLS, a migrated database, a Runtime.

Every engine test runs in three set-ups (`SETUPS`): the in-process queue on SQLite, arq
over real Redis with an arq worker in this process on MariaDB (same `run_operation`),
and the in-process queue against PVE 8.4.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator, run_simulator
from tests.vms.kit import (
    TIME_SCALE,
    MakeRuntime,
    arq_worker,
    make_settings,
    open_fast_runtime,
    sqlite_url,
)


@dataclass(frozen=True)
class Setup:
    """One engine set-up: the queue transport, the database and the PVE version."""

    transport: str
    database: str
    version: str


SETUPS = {
    "inprocess-sqlite-9.1": Setup("inprocess", "sqlite", "9.1"),  # the embedded default
    "arq-mariadb-9.1": Setup("arq", "mariadb", "9.1"),  # production
    "inprocess-sqlite-8.4": Setup("inprocess", "sqlite", "8.4"),  # the older PVE
}


@pytest.fixture(params=list(SETUPS))
def setup(request: pytest.FixtureRequest) -> Setup:
    return SETUPS[str(request.param)]


@pytest.fixture
async def sim(setup: Setup) -> AsyncIterator[Simulator]:
    options = {"time_scale": TIME_SCALE, "check_responses": True}
    async with run_simulator(version=setup.version, **options) as s:
        yield s
        assert s.violations == []


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """A migrated SQLite file (the embedded default's database)."""
    url = sqlite_url(tmp_path)
    await upgrade_to_head(url)
    return url


@pytest.fixture
async def mariadb_engine_url(mariadb_database_factory: Any) -> str:
    """A fresh migrated MariaDB database (production's database)."""
    url = str(await mariadb_database_factory("engine"))
    await upgrade_to_head(url)
    return url


@pytest.fixture
def make_runtime(request: pytest.FixtureRequest, setup: Setup, sim: Simulator) -> MakeRuntime:
    """Factory: `async with make_runtime(cloudinit={...}) as runtime:`.

    Three set-ups: the embedded default (in-process queue, SQLite), production's (arq on
    real Redis with an arq worker in this process, MariaDB), and the embedded default
    against PVE 8.4: both transports, both databases, both PVE versions.
    """
    transport = setup.transport
    redis_url = str(request.getfixturevalue("redis_url")) if transport == "arq" else None
    fixture = "database_url" if setup.database == "sqlite" else "mariadb_engine_url"
    database_url = str(request.getfixturevalue(fixture))

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[Runtime]:
        settings = make_settings(sim, database_url, redis_url=redis_url, **options)
        opened = open_fast_runtime(settings, in_process=transport == "inprocess")
        async with opened as runtime:
            if transport == "arq":
                async with arq_worker(settings):
                    yield runtime
            else:
                yield runtime

    return factory


@pytest.fixture
async def runtime(make_runtime: MakeRuntime) -> AsyncIterator[Runtime]:
    async with make_runtime() as rt:
        yield rt
