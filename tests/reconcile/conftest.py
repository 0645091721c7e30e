"""Fixtures: the simulator (manual stats ticks), a client on it, DB sessions rolled back.

- `sim`: demo seed plus `POOL_VMS` linked clones (10000.., every 4th running), PVE 9.1,
  HTTPS, instant tasks; `autotick` is off, so the lagging /cluster/resources view only
  moves when a test calls `sim.cluster.tick()`.
- `sessions`: a session factory on one connection whose outer transaction is rolled back
  after the test; each unit of work the sync commits ends a savepoint.
- `harness`: everything `sync_cluster` takes, SQL snapshot store included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from openvle_core.proxmox import PollSchedule, ProxmoxClient, build_http_client
from openvle_core.snapshot import SqlSnapshotStore
from openvle_pvesim import Simulator, run_simulator
from tests.reconcile.kit import FAST_RETRY, POOL_VMS, Harness, settings_for


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(version="9.1", vms=POOL_VMS, check_responses=True) as simulator:
        simulator.cluster.autotick = False
        yield simulator
        assert simulator.violations == []


@pytest.fixture
async def sessions(db_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with db_engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield async_sessionmaker(
                bind=conn,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )
        finally:
            await outer.rollback()


@pytest.fixture
async def harness(
    sim: Simulator, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Harness]:
    settings = settings_for(sim)
    async with build_http_client(settings.proxmox) as http:
        proxmox = ProxmoxClient(
            http, settings.proxmox, retry=FAST_RETRY, poll=PollSchedule(first=0.005, cap=0.05)
        )
        yield Harness(sim, proxmox, sessions, SqlSnapshotStore(sessions), settings, http)
