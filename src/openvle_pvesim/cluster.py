"""The pvestatd view of the cluster and the background loops that age it.

`/cluster/resources` is served from a per-tick cache (as pvestatd's RRD broadcast every
10 s): a new VM appears at once with status `unknown` until the next `tick()`, while
config locks and tags are read live. The cached figures are `livestats` (the same the
live endpoints compute) and `usage` (node memory, storage space) of the tick's moment.
Background loops (`start()`) run the stats tick and HA rounds at 10 s scaled by
`time_scale`; tests can set `autotick = False` and call `tick()` / `ha_round()`
themselves.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from openvle_pvesim.faults import DomainFaults
from openvle_pvesim.livestats import resource_entry
from openvle_pvesim.model import (
    GIB,
    PVE_VERSIONS,
    VM,
    ClusterState,
    HAService,
    Node,
    NoFaults,
    Pool,
    Storage,
)
from openvle_pvesim.resources import node_entries, other_entries
from openvle_pvesim.vmops import ha_apply

if TYPE_CHECKING:
    from openvle_pvesim.access import Principal

__all__ = [
    "GIB",
    "PVE_VERSIONS",
    "VM",
    "Cluster",
    "HAService",
    "NoFaults",
    "Node",
    "Pool",
    "Storage",
]

STATS_INTERVAL = 10.0
TICK_SLICE = 500  # VMs per slice of a background stats round
HA_INTERVAL = 10.0


class Cluster(ClusterState):
    """The cluster state plus pvestatd's lagged view and the loops that age it."""

    def __init__(
        self, version: str, time_scale: float, faults: DomainFaults, rng: random.Random
    ) -> None:
        super().__init__(version, time_scale, faults, rng)
        self.autotick = True
        self.stats_interval: float | None = None
        """Seconds between background stats rounds, real time; None: STATS_INTERVAL
        scaled by the time scale (at least 0.05 s)."""
        self._loops: list[asyncio.Task[None]] = []

    # --- stats view ------------------------------------------------------------------
    def tick(self) -> None:
        """One pvestatd round: snapshot VM, node and storage figures (livestats, usage)
        for the lagged views."""
        now = time.time()
        for vm in self.vms.values():
            vm.entry = resource_entry(self, vm, now)
        self._tick_totals()

    async def tick_in_slices(self) -> None:
        """`tick()` a slice of VMs at a time, serving the requests that arrive in between:
        Proxmox's API daemons never wait for pvestatd (at 10,000 VMs one whole round held
        every request back for ~100 ms)."""
        now = time.time()
        vms = list(self.vms.values())
        for start in range(0, len(vms), TICK_SLICE):
            for vm in vms[start : start + TICK_SLICE]:
                vm.entry = resource_entry(self, vm, now)
            await asyncio.sleep(0)
        self._tick_totals()

    def _tick_totals(self) -> None:
        for name, n in self.nodes.items():
            n.mem = self.node_used(name)
        for storage in self.storages.values():
            storage.used = {
                where: size for (sid, where), size in self.usage.space.items() if sid == storage.sid
            }

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
        stats = self._every(STATS_INTERVAL, self._tick_async, fixed=self.stats_interval)
        self._loops.append(loop.create_task(stats))
        self._loops.append(loop.create_task(self._every(HA_INTERVAL, self.ha_round)))

    async def _tick_async(self) -> None:
        await self.tick_in_slices()

    async def _every(
        self, interval: float, step: Callable[[], Awaitable[None]], fixed: float | None = None
    ) -> None:
        """Run `step` every scaled `interval` (or every `fixed` seconds), but never spend
        over ~20 % of the CPU on it."""
        period = max(self.scaled(interval), 0.05) if fixed is None else fixed
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
