"""`ProxmoxClient`: the typed, pool-scoped, version-aware async client for Proxmox VE.

One instance per process, built on an injected `httpx.AsyncClient` (see
`transport.build_http_client`). Cluster-, pool-, HA- and task-level calls live here;
VM-level calls in `vms.VmOperations`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Literal

import httpx

from openvle_core.proxmox import pools, privileges
from openvle_core.proxmox.errors import (
    HaGroupsUnsupported,
    ProxmoxBadResponse,
    ProxmoxPermissionDenied,
)
from openvle_core.proxmox.models import (
    ClusterResource,
    HaResource,
    NodeInfo,
    NodeStatus,
    Permissions,
    Pool,
    PrivilegeReport,
    TaskStatus,
    TaskSummary,
    VersionInfo,
    parse,
    parse_list,
)
from openvle_core.proxmox.observe import ProxmoxObserver
from openvle_core.proxmox.resources import ResourceEntry, decode_entries
from openvle_core.proxmox.retry import RetryPolicy
from openvle_core.proxmox.tasks import PollSchedule, TaskWatcher, log_tail, task_log, task_status
from openvle_core.proxmox.transport import ApiCaller
from openvle_core.proxmox.vms import VmOperations
from openvle_core.settings import ProxmoxSettings

ResourceType = Literal["vm", "storage", "node", "sdn"]
HA_RESOURCES = "/cluster/ha/resources"


class ProxmoxClient(VmOperations):
    """Typed calls to one Proxmox VE cluster with the token and pool from `settings`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: ProxmoxSettings,
        *,
        retry: RetryPolicy | None = None,
        observer: ProxmoxObserver | None = None,
        poll: PollSchedule | None = None,
    ) -> None:
        self.settings = settings
        retry = retry or RetryPolicy(
            attempts=settings.retry_attempts, total_time=settings.retry_total_time
        )
        self._api = ApiCaller(http, settings, retry=retry, observer=observer)
        self._guard = pools.PoolGuard(settings.vms_pool, self._read_pool)
        self._poll = poll or PollSchedule()
        self._watcher = TaskWatcher(self._api, self._poll)
        self._ignored_networks = tuple(settings.agent_ignored_networks)
        self._version: VersionInfo | None = None
        self._version_lock = asyncio.Lock()

    @property
    def pool_members(self) -> dict[int, str | None]:
        """The cached membership of our pool: vmid -> node as last seen."""
        return self._guard.members

    async def member_node(self, vmid: int) -> str | None:
        """The node of `vmid` if our pool holds it, from the membership this client keeps
        (the clone's and create's `pool=`, every /cluster/resources read, the sync); the
        pool is read only when `vmid` is not known (one read shared by concurrent misses)."""
        if vmid not in self._guard:
            await self._guard.refresh(seen_generation=self._guard.generation)
        return self._guard.node_of(vmid)

    def joined_pool(self, vmid: int, node: str | None) -> None:
        """Record that PVE put `vmid` into our pool (a clone task with `pool=` ended OK:
        PVE adds the guest to the pool last and fails the task if it cannot)."""
        self._guard.add(vmid, node)

    async def version(self) -> VersionInfo:
        """GET /version, read once per client and cached."""
        async with self._version_lock:
            if self._version is None:
                self._version = parse(VersionInfo, await self._api.get("/version"))
            return self._version

    async def release(self) -> tuple[int, int]:
        """The PVE release as (major, minor), from the cached /version."""
        return (await self.version()).major_minor

    async def cluster_resources(self, type: ResourceType | None = None) -> list[ClusterResource]:
        """GET /cluster/resources (optionally filtered); refreshes the pool membership."""
        data = await self._api.get("/cluster/resources", {"type": type})
        resources = parse_list(ClusterResource, data)
        if type in {None, "vm"}:
            self._guard.replace_from_resources(resources)
        return resources

    async def cluster_resource_entries(self) -> list[ResourceEntry]:
        """GET /cluster/resources (every type) decoded straight into `ResourceEntry`
        structs, their fields as PVE sent them: for a caller that validates only the
        entries it uses (the sync, at 10,000 guests: `parse` on each entry costs four
        times the JSON decoding, and the decoding into dicts four times this). A body that
        is not a list of objects with a string `id` and `type` is `ProxmoxBadResponse`.
        The pool membership is not refreshed here: hand the pool guests' vmids and
        nodes to `remember_members`."""
        entries: list[ResourceEntry] = await self._api.get_decoded(
            "/cluster/resources", decode_entries
        )
        return entries

    def remember_members(self, pool: str, members: dict[int, str | None]) -> None:
        """Refresh the pool membership from the guests /cluster/resources shows in `pool`
        (vmid -> node; ignored unless `pool` is ours): one dict, no pass over every
        entry again."""
        self._guard.replace_members(pool, members)

    async def pool_vms(self) -> list[ClusterResource]:
        """Cluster-resource entries of the guests in our pool, and only those."""
        resources = await self.cluster_resources("vm")
        if not any(r.pool is not None for r in resources):
            await self._guard.refresh()
        members = self._guard.members
        return [r for r in resources if r.vmid is not None and r.vmid in members]

    async def next_vmid(self) -> int:
        """GET /cluster/nextid (a hint, not a reservation: clones can still collide)."""
        data = await self._api.get("/cluster/nextid")
        if not str(data).isdigit():  # PVE sends the integer as a JSON string
            raise ProxmoxBadResponse(f"GET /cluster/nextid: not a vmid: {data!r}")
        return int(data)

    async def nodes(self) -> list[NodeInfo]:
        """GET /nodes."""
        return parse_list(NodeInfo, await self._api.get("/nodes"))

    async def node_status(self, node: str) -> NodeStatus:
        """GET /nodes/{node}/status."""
        return parse(NodeStatus, await self._api.get("/nodes/{node}/status", node=node))

    async def get_pool(self) -> Pool:
        """Our pool with its members; refreshes the membership cache."""
        pool = await self._read_pool()
        self._guard.replace_from_members(pool.members)
        return pool

    async def add_to_pool(self, vmids: Iterable[int], *, allow_move: bool = False) -> None:
        """Put VMs into our pool (`allow_move` takes them from another pool)."""
        vmids = list(vmids)
        await pools.update_pool(
            self._api, self._guard.poolid, await self.release(), vms=vmids, allow_move=allow_move
        )
        for vmid in vmids:
            self._guard.add(vmid, None)

    async def remove_from_pool(self, vmids: Iterable[int]) -> None:
        """Take pool VMs out of our pool (after this the guard refuses them)."""
        vmids = list(vmids)
        for vmid in vmids:
            await self._guard.check(vmid)
        await pools.update_pool(
            self._api, self._guard.poolid, await self.release(), vms=vmids, remove=True
        )
        for vmid in vmids:
            self._guard.forget(vmid)

    async def _read_pool(self) -> Pool:
        return await pools.read_pool(self._api, self._guard.poolid, await self.release())

    async def ha_resources(self) -> list[HaResource]:
        """HA resources of type vm (all of them: HA config is cluster-wide)."""
        data = await self._api.get(HA_RESOURCES, {"type": "vm"})
        return parse_list(HaResource, data)

    async def ha_add(
        self,
        vmid: int,
        *,
        state: Literal["started", "stopped", "enabled", "disabled", "ignored"] = "started",
        max_restart: int | None = None,
        max_relocate: int | None = None,
        comment: str | None = None,
        group: str | None = None,
    ) -> None:
        """Make a pool VM HA-managed. `group` exists only before PVE 9 (rules replace it)."""
        await self._guard.check(vmid)
        if group is not None and await self.release() >= (9, 0):
            raise HaGroupsUnsupported(
                f"HA group {group!r} requested, but PVE 9 has no HA groups (they became rules)",
                method="POST",
                path=HA_RESOURCES,
                errors={"group": "not supported on PVE 9"},
            )
        params = {
            "sid": f"vm:{vmid}",
            "state": state,
            "max_restart": max_restart,
            "max_relocate": max_relocate,
            "comment": comment,
            "group": group,
        }
        await self._api.write("POST", HA_RESOURCES, params)

    async def ha_remove(self, vmid: int) -> None:
        """Stop HA-managing a pool VM (the VM itself is left as it is)."""
        await self._guard.check(vmid)
        await self._api.write("DELETE", HA_RESOURCES + "/{sid}", sid=f"vm:{vmid}")

    async def task_status(self, upid: str) -> TaskStatus:
        """The status of any task by UPID."""
        return await task_status(self._api, upid)

    async def active_tasks(
        self, node: str, *, vmid: int | None = None, typefilter: str | None = None
    ) -> list[TaskSummary]:
        """GET /nodes/{node}/tasks?source=active: running tasks the token may see (a
        token sees its own), optionally of one guest (`vmid`; a clone's is the source's)."""
        params = {"source": "active", "vmid": vmid, "typefilter": typefilter, "limit": 500}
        data = await self._api.get("/nodes/{node}/tasks", params, node=node)
        return parse_list(TaskSummary, data)

    async def task_log(self, upid: str, *, start: int = 0, limit: int = 50) -> list[str]:
        """Lines of a task's log."""
        return await task_log(self._api, upid, start=start, limit=limit)

    async def task_log_tail(self, upid: str, lines: int = 20) -> list[str]:
        """The last lines of a task's log."""
        return await log_tail(self._api, upid, lines)

    async def check_privileges(self) -> PrivilegeReport:
        """Per feature, which privileges the token lacks on which path (for this version),
        and what it holds outside the pool that OpenVLE does not need."""
        version = await self.version()
        try:
            members = (await self.get_pool()).members
        except ProxmoxPermissionDenied:
            members = []
        storages = [m.storage for m in members if m.storage]
        data = await self._api.get("/access/permissions")
        held = parse(Permissions, data).root
        pool = self._guard.poolid
        needs = privileges.requirements(version.major_minor, pool, storages)
        vmids = {m.vmid for m in members if m.vmid is not None}
        return PrivilegeReport(
            release=version.release,
            pool=pool,
            missing=privileges.missing(held, needs),
            excess=privileges.beyond_pool(held, pool, vmids),
        )
