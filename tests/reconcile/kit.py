"""kit: TODO docstring."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Vm
from openvle_core.db.session import transaction
from openvle_core.proxmox import ProxmoxClient, RetryPolicy
from openvle_core.reconcile import SyncResult, sync_cluster
from openvle_core.settings import ProxmoxSettings, Settings, load_settings
from openvle_core.snapshot import SnapshotStore
from openvle_pvesim import Simulator

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
