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
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from openvle_core.db.models import Vm
from openvle_core.db.session import transaction
from openvle_core.proxmox import PollSchedule, ProxmoxClient, RetryPolicy, build_http_client
from openvle_core.reconcile import SyncResult, sync_cluster
from openvle_core.settings import ProxmoxSettings, Settings, load_settings
from openvle_core.snapshot import SnapshotStore, SqlSnapshotStore
from openvle_pvesim import Simulator, run_simulator

POOL = "OpenVLE-VMs"
POOL_VMS = 8
CI_TOKEN = "openvle@pve!ci"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01, total_time=5.0)


def settings_for(sim: Simulator) -> Settings:
    """The default settings, pointed at `sim` with the CI token."""
    proxmox = ProxmoxSettings(
        hostname=sim.hostname,
        user="openvle@pve",
        token_name="ci",
        token_value=SecretStr(sim.tokens[CI_TOKEN]),
        verify_ssl=sim.ca_file or False,
        vms_pool=POOL,
    )
    return load_settings(env_file=None).model_copy(update={"proxmox": proxmox})


@dataclass
class Harness:
    """A simulator, a client on it (and its httpx client), DB sessions, a snapshot store."""

    sim: Simulator
    proxmox: ProxmoxClient
    sessions: async_sessionmaker[AsyncSession]
    snapshot: SnapshotStore
    settings: Settings
    http: httpx.AsyncClient | None = None

    async def sync(self) -> SyncResult:
        """One sync with this harness's parts."""
        return await sync_cluster(
            sessions=self.sessions,
            proxmox=self.proxmox,
            snapshot=self.snapshot,
            settings=self.settings,
        )

    async def add_vms(self, *vms: Vm) -> list[Vm]:
        """Commit VM rows (what the engine would have created)."""
        async with transaction(self.sessions) as session:
            session.add_all(vms)
        return list(vms)


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
