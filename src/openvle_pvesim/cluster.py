"""The simulated cluster's state: nodes, storages, VMs, pools, HA, tasks and the stats lag.

`/cluster/resources` is served from a per-tick cache (as pvestatd's RRD broadcast every
10 s): a new VM appears at once with status `unknown` until the next `tick()`, while
config locks and tags are read live. Background loops (`start()`) run the stats tick and
HA rounds at 10 s scaled by `time_scale`; tests can set `autotick = False` and call
`tick()` / `ha_round()` themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openvle_pvesim.access import AccessControl
from openvle_pvesim.contract import DomainFaults, PVEError
from openvle_pvesim.resources import node_entries, other_entries
from openvle_pvesim.tasks import FLock, TaskManager
from openvle_pvesim.vmconfig import disk_keys, parse_size, storage_of, volid, volume_keys
from openvle_pvesim.vmops import ha_apply

if TYPE_CHECKING:
    from openvle_pvesim.access import Principal

STATS_INTERVAL = 10.0
HA_INTERVAL = 10.0
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


@dataclass
class VM:
    """A QEMU guest: its config (PVE keys and value types) and runtime state."""

    vmid: int
    node: str
    config: dict[str, Any]
    running: bool = False
    paused: bool = False
    started_at: float = 0.0
    agent_running: bool = True
    dhcp_ip: str | None = None
    entry: dict[str, Any] | None = None
    last_shutdown: str | None = None

    @property
    def name(self) -> str:
        return str(self.config.get("name", f"VM {self.vmid}"))

    @property
    def is_template(self) -> bool:
        return bool(self.config.get("template"))

    @property
    def maxmem(self) -> int:
        return int(str(self.config.get("memory", "512")).removeprefix("current=")) * 1024**2

    def digest(self) -> str:
        text = "\n".join(f"{k}: {v}" for k, v in sorted(self.config.items()))
        return hashlib.sha1(text.encode()).hexdigest()


class Cluster:
    """All simulated state plus the background loops that age it."""

    def __init__(
        self, version: str, time_scale: float, faults: DomainFaults, rng: random.Random
    ) -> None:
        self.version = version
        self.time_scale = time_scale
        self.faults = faults
        self.rng = rng
        self.nodes: dict[str, Node] = {}
        self.storages: dict[str, Storage] = {}
        self.vms: dict[int, VM] = {}
        self.pools: dict[str, Pool] = {}
        self.ha: dict[int, HAService] = {}
        self.ha_rules: dict[str, dict[str, Any]] = {}
        self.ha_groups: dict[str, dict[str, Any]] = {}
        self.contested_ids: set[int] = set()
        self._pool_of: dict[int, str] = {}
        self.tasks = TaskManager(time_scale, rng)
        self.access = AccessControl(version, pool_of=self.pool_of, pool_members=self._pool_of.keys)
        self.autotick = True
        self.users: set[str] = set()
        self._flocks: dict[str, FLock] = {}
        self._loops: list[asyncio.Task[None]] = []
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

    # --- stats view ------------------------------------------------------------------
    def tick(self) -> None:
        """One pvestatd round: refresh the lagged per-VM entries and node usage."""
        now = time.time()
        node_mem = {name: n.mem_base for name, n in self.nodes.items()}
        for vm in self.vms.values():
            vm.entry = self._vm_entry(vm, now)
            if vm.running and vm.node in node_mem:
                node_mem[vm.node] += int(vm.entry["mem"])
        for name, n in self.nodes.items():
            n.mem = min(node_mem[name], int(n.maxmem * 0.95))
        self._storage_usage()

    def _storage_usage(self) -> None:
        """Bytes used per storage (per node for local ones); linked clones count 10 %."""
        for storage in self.storages.values():
            storage.used = {}
        for vm in self.vms.values():
            for key in volume_keys(vm.config):
                value = str(vm.config[key])
                target = self.storages.get(storage_of(value))
                if target is None:
                    continue
                size = parse_size(value) // (10 if "/" in volid(value) else 1)
                where = "" if target.shared else vm.node
                target.used[where] = target.used.get(where, 0) + size

    def _vm_entry(self, vm: VM, now: float) -> dict[str, Any]:
        running = vm.running
        entry: dict[str, Any] = {
            "id": f"qemu/{vm.vmid}",
            "vmid": vm.vmid,
            "type": "qemu",
            "name": vm.name,
            "status": "running" if running else "stopped",
            "template": 1 if vm.is_template else 0,
            "uptime": int(now - vm.started_at) if running else 0,
            "maxcpu": int(vm.config.get("cores", 1)) * int(vm.config.get("sockets", 1)),
            "cpu": round(self.rng.uniform(0.005, 0.25), 4) if running else 0,
            "maxmem": vm.maxmem,
            "mem": int(vm.maxmem * self.rng.uniform(0.3, 0.7)) if running else 0,
            "maxdisk": self.disk_size(vm),
            "disk": 0,
            "netin": self.rng.randrange(10**6, 10**9) if running else 0,
            "netout": self.rng.randrange(10**5, 10**8) if running else 0,
            "diskread": self.rng.randrange(10**6, 10**9) if running else 0,
            "diskwrite": self.rng.randrange(10**6, 10**9) if running else 0,
        }
        if self.version != "8.4":
            entry["memhost"] = entry["mem"]
        return entry

    def disk_size(self, vm: VM) -> int:
        """Size in bytes of the VM's boot disk (scsi0/virtio0/sata0)."""
        for key in disk_keys(vm.config):
            return parse_size(str(vm.config[key]))
        return 0

    def vm_resource(self, vm: VM, audit_pools: bool) -> dict[str, Any]:
        """The /cluster/resources entry: lagged stats plus live node, lock, tags, pool."""
        if vm.entry is None:
            entry: dict[str, Any] = {
                "id": f"qemu/{vm.vmid}",
                "vmid": vm.vmid,
                "type": "qemu",
                "status": "unknown",
            }
        else:
            entry = dict(vm.entry)
        entry["node"] = vm.node
        if "lock" in vm.config:
            entry["lock"] = vm.config["lock"]
        if "tags" in vm.config:
            entry["tags"] = vm.config["tags"]
        pool = self._pool_of.get(vm.vmid)
        if pool is not None and audit_pools:
            entry["pool"] = pool
        svc = self.ha.get(vm.vmid)
        if svc is not None:
            entry["hastate"] = svc.crm_state
        return entry

    def resources(self, principal: Principal, kind: str | None) -> list[dict[str, Any]]:
        """GET /cluster/resources for `principal`, filtered by what it may audit."""
        out: list[dict[str, Any]] = []
        if kind in (None, "vm"):
            has = principal.has
            audits: dict[str | None, bool] = {None: False}  # pool -> Pool.Audit, asked once
            for vm in self.vms.values():
                if has(f"/vms/{vm.vmid}", "VM.Audit"):
                    pool = self._pool_of.get(vm.vmid)
                    audit = audits.get(pool)
                    if audit is None:
                        audit = audits[pool] = has(f"/pool/{pool}", "Pool.Audit")
                    out.append(self.vm_resource(vm, audit))
        if kind in (None, "node"):
            out.extend(node_entries(self, principal))
        out.extend(other_entries(self, principal, kind))
        return out

    # --- background loops --------------------------------------------------------------
    def start(self) -> None:
        """Spawn the stats tick and HA loops in the running event loop."""
        loop = asyncio.get_running_loop()
        self._loops.append(loop.create_task(self._every(STATS_INTERVAL, self._tick_async)))
        self._loops.append(loop.create_task(self._every(HA_INTERVAL, self.ha_round)))

    async def _tick_async(self) -> None:
        self.tick()

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` every scaled `interval`, but never spend over ~20 % of the CPU on it."""
        period = max(self.scaled(interval), 0.05)
        cost = 0.0
        while True:
            await asyncio.sleep(max(period, cost * 4))
            if self.autotick:
                began = time.perf_counter()
                await step()
                cost = time.perf_counter() - began

    async def ha_round(self) -> None:
        """One CRM+LRM round: bring HA-managed VMs to their requested state."""
        await ha_apply(self)

    async def stop(self) -> None:
        """Cancel the loops and any running task workers."""
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        await self.tasks.cancel_all()

    def set_agent(self, vmid: int, mode: str) -> None:
        """Test helper: guest agent `none` (not configured), `stopped` or `running`."""
        vm = self.vms[vmid]
        if mode == "none":
            vm.config.pop("agent", None)
        else:
            vm.config.setdefault("agent", "1")
            vm.agent_running = mode == "running"
