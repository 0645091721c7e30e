"""The simulated cluster's state: nodes, storages, VMs, pools, HA services, tasks, access.

`ClusterState` holds the state and the lookups every part of the model needs; the
pvestatd view and the background loops that age it live in `cluster.Cluster`, its
subclass, so the workers (`vmops`, `agent`) and the resource views depend on the state
alone.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from openvle_pvesim.access import AccessControl
from openvle_pvesim.errors import PVEError
from openvle_pvesim.faults import DomainFaults
from openvle_pvesim.tasks import FLock, TaskManager
from openvle_pvesim.usage import Usage, VMTable
from openvle_pvesim.vmconfig import disk_keys, parse_size, storage_of

GIB = 1024**3
PVE_VERSIONS = {"9.1": ("9.1.5", "9.1", "d3a5b4c1"), "8.4": ("8.4.1", "8.4", "2a5fa54a")}


class NoFaults:
    """A DomainFaults that never fires."""

    def take(self, kind: str, target: str) -> str | None:
        return None


@dataclass
class Node:
    """A cluster node; `cpu` is its base load fraction (seeds differ per node)."""

    name: str
    nodeid: int
    ip: str
    cpu: float
    maxcpu: int = 32
    maxmem: int = 256 * GIB
    mem_base: int = 8 * GIB
    maxdisk: int = 100 * GIB
    disk: int = 12 * GIB
    boot_time: float = field(default_factory=lambda: time.time() - 21 * 86400)
    online: bool = True
    mem: int = 0


@dataclass
class Storage:
    """A storage definition; non-shared storages exist separately on each node."""

    sid: str
    plugintype: str
    shared: bool
    total: int
    content: str = "images,rootdir"
    used: dict[str, int] = field(default_factory=dict)


@dataclass
class Pool:
    poolid: str
    comment: str = ""
    vms: set[int] = field(default_factory=set)
    storage: set[str] = field(default_factory=set)


@dataclass
class HAService:
    """An HA resource (`vm:ID`): its raw resources.cfg entry plus the CRM's service state."""

    vmid: int
    conf: dict[str, Any] = field(default_factory=lambda: {"state": "started"})
    crm_state: str = "stopped"
    busy: bool = False
    migrate_to: str | None = None
    failures: int = 0
    stop_timeout: int = 60

    @property
    def state(self) -> str:
        return str(self.conf.get("state", "started"))

    @property
    def sid(self) -> str:
        return f"vm:{self.vmid}"


_RECHARGE_MEMORY = frozenset({"running", "starting"})
_RECHARGE = _RECHARGE_MEMORY | {"node", "config"}


@dataclass
class VM:
    """A QEMU guest: its config (PVE keys and value types) and runtime state.

    `starting` is set while QEMU comes up (its memory is already taken). Assigning
    `running`, `starting`, `node` or `config` recharges the VM's node memory and storage
    space in the cluster's `usage.Usage` (the VM gets it when it enters `cluster.vms`).
    """

    vmid: int
    node: str
    config: dict[str, Any]
    running: bool = False
    starting: bool = False
    paused: bool = False
    started_at: float = 0.0
    agent_running: bool = True
    dhcp_ip: str | None = None
    entry: dict[str, Any] | None = None
    last_shutdown: str | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.config.get("name", f"VM {self.vmid}"))

    @property
    def is_template(self) -> bool:
        return bool(self.config.get("template"))

    @property
    def maxmem(self) -> int:
        return int(str(self.config.get("memory", "512")).removeprefix("current=")) * 1024**2

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _RECHARGE:
            usage: Usage | None = self.__dict__.get("_usage")
            if usage is not None and name in _RECHARGE_MEMORY:
                usage.update_memory(self)
            elif usage is not None:
                usage.update(self)

    def digest(self) -> str:
        text = "\n".join(f"{k}: {v}" for k, v in sorted(self.config.items()))
        return hashlib.sha1(text.encode()).hexdigest()


class ClusterState:
    """All simulated state and the lookups on it (`cluster.Cluster` adds what ages it)."""

    def __init__(
        self, version: str, time_scale: float, faults: DomainFaults, rng: random.Random
    ) -> None:
        self.version = version
        self.time_scale = time_scale
        self.faults = faults
        self.rng = rng
        self.nodes: dict[str, Node] = {}
        self.storages: dict[str, Storage] = {}
        self.usage = Usage(self.storages)
        self.vms: dict[int, VM] = VMTable(self.usage)
        self.pools: dict[str, Pool] = {}
        self.ha: dict[int, HAService] = {}
        self.ha_rules: dict[str, dict[str, Any]] = {}
        self.ha_groups: dict[str, dict[str, Any]] = {}
        self.contested_ids: set[int] = set()
        self.leases: dict[int, str] = {}  # vmid -> its DHCP address (agent.dhcp_address)
        self.lease_holders: dict[str, int] = {}  # and back
        self._pool_of: dict[int, str] = {}
        self.tasks = TaskManager(time_scale, rng)
        self.access = AccessControl(version, pool_of=self.pool_of, pool_members=self._pool_of.keys)
        self.users: set[str] = set()
        self.passwords: dict[str, str] = {}  # the seed's login passwords, to print and test
        self._flocks: dict[str, FLock] = {}
        self._mac_counter = rng.randrange(0x100000, 0xE00000)

    # --- lookups -------------------------------------------------------------------
    def pool_of(self, vmid: int) -> str | None:
        return self._pool_of.get(vmid)

    def set_pool(self, vmid: int, poolid: str | None) -> None:
        """Move a VM into `poolid` (or out of any pool)."""
        old = self._pool_of.pop(vmid, None)
        if old is not None and old in self.pools:
            self.pools[old].vms.discard(vmid)
        if poolid is not None:
            self.pools[poolid].vms.add(vmid)
            self._pool_of[vmid] = poolid

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            raise PVEError(500, f"no such cluster node '{name}'")
        return self.nodes[name]

    def vm_at(self, node: str, vmid: int) -> VM:
        """The VM whose config lives on `node`, else PVE's load_config error."""
        self.node(node)
        vm = self.vms.get(vmid)
        if vm is None or vm.node != node:
            raise PVEError(
                500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )
        return vm

    def node_used(self, name: str) -> int:
        """A node's used memory now: its own base plus what its running guests hold."""
        node = self.nodes[name]
        return min(node.mem_base + self.usage.node_mem.get(name, 0), node.maxmem)

    def flock(self, vmid: int) -> FLock:
        return self._lock(f"/var/lock/qemu-server/lock-{vmid}.conf")

    def storage_lock(self, sid: str, node: str) -> FLock:
        """The node-local storage lock that allocations on `sid` take."""
        return self._lock(f"/var/lock/pve-manager/pve-storage-{sid}", node)

    def _lock(self, path: str, scope: str = "") -> FLock:
        key = f"{scope}:{path}"
        if key not in self._flocks:
            self._flocks[key] = FLock(path)
        return self._flocks[key]

    def ha_managed(self, vmid: int) -> bool:
        svc = self.ha.get(vmid)
        return svc is not None and svc.state != "ignored"

    def new_mac(self) -> str:
        """A fresh MAC in Proxmox's BC:24:11 OUI."""
        self._mac_counter += self.rng.randrange(1, 64)
        n = self._mac_counter & 0xFFFFFF
        return f"BC:24:11:{n >> 16:02X}:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}"

    def nextid(self) -> int:
        vmid = 100
        while vmid in self.vms:
            vmid += 1
        return vmid

    def is_shared(self, drive: str) -> bool:
        """Whether the storage of a drive string is shared between nodes."""
        storage = self.storages.get(storage_of(drive))
        return storage is not None and storage.shared

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def disk_size(self, vm: VM) -> int:
        """Size in bytes of the VM's boot disk (scsi0/virtio0/sata0)."""
        for key in disk_keys(vm.config):
            return parse_size(str(vm.config[key]))
        return 0

    def set_agent(self, vmid: int, mode: str) -> None:
        """Test helper: guest agent `none` (not configured), `stopped` or `running`."""
        vm = self.vms[vmid]
        if mode == "none":
            vm.config.pop("agent", None)
        else:
            vm.config.setdefault("agent", "1")
            vm.agent_running = mode == "running"
