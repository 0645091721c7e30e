"""Helpers for sync tests: settings for the simulator and a harness of the sync's parts."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Vm
from openvle_core.db.session import transaction
from openvle_core.guests.identity import Evidence, Marks, meta_ctime
from openvle_core.proxmox import ProxmoxClient, RetryPolicy
from openvle_core.settings import ProxmoxSettings, Settings, load_settings
from openvle_core.snapshot import SnapshotStore
from openvle_core.sync import SyncResult, sync_cluster
from openvle_pvesim import Simulator
from openvle_pvesim.cluster import VM

POOL = "OpenVLE-VMs"


POOL_VMS = 8


CI_TOKEN = "openvle@pve!ci"


FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01, total_time=5.0)


def evidence_of(sim: Simulator, vmid: int) -> dict[str, Any]:
    """The identity columns the engine records on a VM row right after it cloned `vmid`."""
    config = sim.cluster.vms[vmid].config
    marks = Marks(vmgenid=config.get("vmgenid"), ctime=meta_ctime(config.get("meta")))
    return Evidence.of(marks).columns()


def replace_guest(sim: Simulator, vmid: int, name: str | None = None) -> VM:
    """Someone destroys guest `vmid` and creates another on its node, same pool, same
    state, named `name` (default: the old guest's name); the stats tick has passed."""
    cluster = sim.cluster
    old = cluster.vms[vmid]
    config = {
        "name": name or old.name,
        "memory": old.config.get("memory", "1024"),
        "cores": old.config.get("cores", 1),
        "smbios1": f"uuid={uuid.uuid4()}",
        "vmgenid": str(uuid.uuid4()),
        "meta": f"creation-qemu=9.2.0,ctime={int(time.time())}",
    }
    if old.is_template:
        config["template"] = 1
    new = VM(vmid, old.node, config, running=old.running, started_at=old.started_at)
    cluster.vms[vmid] = new
    cluster.tick()
    return new


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
