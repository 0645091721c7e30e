"""VM-level calls: config, create, clone, template, power, migrate, delete, guest agent.

Every method first passes the pool guard (`OutsidePool` before any request). Calls that
start a task wait for it and return its final `TaskStatus` or the VM's `VmStatus`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from ipaddress import IPv4Network

from openvle_core.proxmox import agent
from openvle_core.proxmox.errors import (
    MigrationBlocked,
    ProxmoxError,
    ProxmoxNotFound,
    ProxmoxTaskTimeout,
)
from openvle_core.proxmox.models import (
    AgentInterface,
    AgentInterfaces,
    Ipv4Lookup,
    MigratePreconditions,
    TaskStatus,
    VmConfig,
    VmStatus,
    parse,
)
from openvle_core.proxmox.pools import PoolGuard
from openvle_core.proxmox.tasks import PollSchedule, TaskWatcher, Upid, watch_task
from openvle_core.proxmox.transport import ApiCaller

VM = "/nodes/{node}/qemu/{vmid}"
CONFIG = VM + "/config"
STATUS = VM + "/status/current"
POWER = VM + "/status/{action}"
AGENT = VM + "/agent/{command}"
TASK_TIMEOUT = 600.0
POWER_TIMEOUT = 180.0
StatePredicate = Callable[[VmStatus], bool]


def _is_running(status: VmStatus) -> bool:
    return status.status == "running" and status.qmpstatus in {None, "running"}


def _is_stopped(status: VmStatus) -> bool:
    return status.status == "stopped"


def _is_paused(status: VmStatus) -> bool:
    return status.qmpstatus in {"paused", "suspended"}


class VmOperations:
    """The VM-level half of `ProxmoxClient` (state is set up by its constructor)."""

    _api: ApiCaller
    _guard: PoolGuard
    _poll: PollSchedule
    _watcher: TaskWatcher
    _ignored_networks: tuple[IPv4Network, ...]

    async def wait_task(
        self,
        upid: str,
        timeout: float = TASK_TIMEOUT,  # noqa: ASYNC109 - a polling budget, see below
    ) -> TaskStatus:
        """Wait for a task: its final status, or `ProxmoxTaskFailed` / `ProxmoxTaskTimeout`.

        `timeout` is a polling budget that ends in `ProxmoxTaskTimeout`, not a cancellation.
        Every task waited for at once on a node shares one task list read per poll
        (`tasks.TaskWatcher`).
        """
        return await watch_task(self._watcher, self._api, upid, timeout)

    async def vm_status(self, node: str, vmid: int) -> VmStatus:
        """The live state (status/current), including HA management."""
        await self._guard.check(vmid)
        return parse(VmStatus, await self._api.get(STATUS, node=node, vmid=vmid))

    async def vm_config(self, node: str, vmid: int) -> VmConfig:
        """The current config with its `digest` (for a safe later update)."""
        await self._guard.check(vmid)
        return parse(VmConfig, await self._api.get(CONFIG, node=node, vmid=vmid))

    async def update_vm_config(
        self,
        node: str,
        vmid: int,
        options: Mapping[str, object],
        *,
        digest: str | None = None,
        delete: Iterable[str] = (),
    ) -> None:
        """Set options synchronously (PUT); a stale `digest` raises `ProxmoxConflict`."""
        await self._guard.check(vmid)
        params = {**options, "digest": digest, "delete": list(delete) or None}
        await self._api.write("PUT", CONFIG, params, node=node, vmid=vmid)

    async def create_vm(
        self,
        node: str,
        vmid: int,
        options: Mapping[str, object],
        *,
        task_timeout: float = TASK_TIMEOUT,
    ) -> TaskStatus:
        """Create a VM in our pool (`pool=` is always sent) and wait for the task."""
        params = {**options, "vmid": vmid, "pool": self._guard.poolid}
        upid = await self._api.write("POST", "/nodes/{node}/qemu", params, node=node)
        status = await self.wait_task(upid, task_timeout)
        self._guard.add(vmid, node)
        return status

    async def clone_vm(
        self,
        node: str,
        vmid: int,
        newid: int,
        *,
        name: str | None = None,
        full: bool = False,
        target: str | None = None,
        storage: str | None = None,
        description: str | None = None,
        task_timeout: float = TASK_TIMEOUT,
    ) -> TaskStatus:
        """Clone a pool VM/template into our pool as `newid` and wait for the task."""
        upid = await self.start_clone(
            node,
            vmid,
            newid,
            name=name,
            full=full,
            target=target,
            storage=storage,
            description=description,
        )
        status = await self.wait_task(upid, task_timeout)
        self._guard.add(newid, target or node)
        return status

    async def start_clone(
        self,
        node: str,
        vmid: int,
        newid: int,
        *,
        name: str | None = None,
        full: bool = False,
        target: str | None = None,
        storage: str | None = None,
        description: str | None = None,
    ) -> str:
        """Start a clone into our pool and return its UPID without waiting (crash-safe
        callers record the UPID first, then `wait_task`)."""
        await self._guard.check(vmid)
        params = {
            "newid": newid,
            "pool": self._guard.poolid,
            "name": name,
            "full": full,
            "target": target,
            "storage": storage,
            "description": description,
        }
        upid: str = await self._api.write("POST", VM + "/clone", params, node=node, vmid=vmid)
        return upid

    async def convert_to_template(
        self, node: str, vmid: int, *, task_timeout: float = TASK_TIMEOUT
    ) -> TaskStatus:
        """Turn a stopped pool VM into a template."""
        await self._guard.check(vmid)
        upid = await self._api.write("POST", VM + "/template", node=node, vmid=vmid)
        return await self.wait_task(upid, task_timeout)

    async def delete_vm(
        self, node: str, vmid: int, *, purge: bool = True, task_timeout: float = TASK_TIMEOUT
    ) -> TaskStatus:
        """Destroy a pool VM; `purge` also drops it from HA, backup jobs and the pool."""
        upid = await self.start_delete(node, vmid, purge=purge)
        status = await self.wait_task(upid, task_timeout)
        self._guard.forget(vmid)
        return status

    async def start_delete(self, node: str, vmid: int, *, purge: bool = True) -> str:
        """Start destroying a pool VM and return the UPID without waiting."""
        await self._guard.check(vmid)
        upid: str = await self._api.write("DELETE", VM, {"purge": purge}, node=node, vmid=vmid)
        return upid

    async def start_vm(
        self, node: str, vmid: int, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """Start and return the VM once it runs (HA-managed: after the LRM started it;
        not HA-managed: the state the ended `qmstart` task implies, not read again)."""
        return await self._power(node, vmid, "start", {}, task_timeout, _is_running)

    async def stop_vm(
        self, node: str, vmid: int, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """Hard stop; returns once the VM is stopped."""
        return await self._power(node, vmid, "stop", {}, task_timeout, _is_stopped)

    async def shutdown_vm(
        self,
        node: str,
        vmid: int,
        *,
        force_stop: bool = False,
        guest_timeout: int | None = None,
        task_timeout: float = POWER_TIMEOUT,
    ) -> VmStatus:
        """Graceful shutdown (agent or ACPI); `force_stop` stops it after `guest_timeout`."""
        params = {"forceStop": force_stop, "timeout": guest_timeout}
        return await self._power(node, vmid, "shutdown", params, task_timeout, _is_stopped)

    async def reboot_vm(
        self, node: str, vmid: int, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """Reboot (shutdown, then start) and return the running VM."""
        return await self._power(node, vmid, "reboot", {}, task_timeout, _is_running)

    async def reset_vm(
        self, node: str, vmid: int, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """Hard reset of a running VM."""
        return await self._power(node, vmid, "reset", {}, task_timeout, _is_running)

    async def suspend_vm(
        self, node: str, vmid: int, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """Pause the VM in memory (not to disk)."""
        return await self._power(node, vmid, "suspend", {}, task_timeout, _is_paused)

    async def resume_vm(
        self, node: str, vmid: int, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """Resume a paused VM."""
        return await self._power(node, vmid, "resume", {}, task_timeout, _is_running)

    async def _power(
        self,
        node: str,
        vmid: int,
        action: str,
        params: Mapping[str, object],
        task_timeout: float,
        reached: StatePredicate,
    ) -> VmStatus:
        """POST the action, wait for its task, then for the state (HA tasks end early)."""
        await self._guard.check(vmid)
        deadline = asyncio.get_running_loop().time() + task_timeout
        upid = await self._api.write("POST", POWER, params, node=node, vmid=vmid, action=action)
        return await self._power_done(node, vmid, action, upid, deadline, task_timeout, reached)

    async def send_start(self, node: str, vmid: int) -> str:
        """POST the start and return its UPID without waiting (`finish_start` waits)."""
        await self._guard.check(vmid)
        upid: str = await self._api.write("POST", POWER, {}, node=node, vmid=vmid, action="start")
        return upid

    async def finish_start(
        self, node: str, vmid: int, upid: str, *, task_timeout: float = POWER_TIMEOUT
    ) -> VmStatus:
        """What `start_vm` does after its POST: wait for the task (and, HA-managed, for
        the VM to run)."""
        deadline = asyncio.get_running_loop().time() + task_timeout
        return await self._power_done(
            node, vmid, "start", upid, deadline, task_timeout, _is_running
        )

    async def _power_done(
        self,
        node: str,
        vmid: int,
        action: str,
        upid: str,
        deadline: float,
        task_timeout: float,
        reached: StatePredicate,
    ) -> VmStatus:
        """Wait for a power task, then for the state it leads to (HA tasks end early)."""
        await self.wait_task(upid, task_timeout)
        if action == "start" and not Upid.parse(upid).is_ha:
            # a `qmstart` task (not `hastart`: the VM is not HA-managed) ends OK once the
            # VM runs: no read needed to know it
            return VmStatus(vmid=vmid, status="running", qmpstatus="running")
        status = await self.vm_status(node, vmid)
        if reached(status) or not (Upid.parse(upid).is_ha or status.ha.managed):
            return status

        async def probe() -> bool:
            nonlocal status
            status = await self.vm_status(node, vmid)
            return reached(status)

        late = f"VM {vmid} did not reach the {action} state within {task_timeout:g}s"
        await self._poll_until(probe, deadline, ProxmoxTaskTimeout(upid, task_timeout, late))
        return status

    async def _poll_until(
        self, probe: Callable[[], Awaitable[bool]], deadline: float, late: ProxmoxTaskTimeout
    ) -> None:
        """Call `probe` with growing pauses until it is true; raise `late` at `deadline`."""
        loop = asyncio.get_running_loop()
        delay = self._poll.first
        while not await probe():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise late
            await asyncio.sleep(min(delay, remaining))
            delay = self._poll.next_delay(delay)

    async def migrate_vm(
        self,
        node: str,
        vmid: int,
        target: str,
        *,
        online: bool = False,
        with_local_disks: bool = False,
        task_timeout: float = TASK_TIMEOUT,
    ) -> TaskStatus:
        """Check the preconditions, migrate, wait until the VM runs from `target`.

        `MigrationBlocked` is raised before the POST if PVE would refuse. For HA-managed
        VMs the `hamigrate` task only queues the request, so we also wait for the VM to
        show up on `target` without the `migrate` lock.
        """
        await self._guard.check(vmid)
        deadline = asyncio.get_running_loop().time() + task_timeout
        data = await self._api.get(VM + "/migrate", {"target": target}, node=node, vmid=vmid)
        pre = parse(MigratePreconditions, data)
        _check_migration(pre, vmid, target, online=online, local_disks=with_local_disks)
        params = {"target": target, "online": online, "with-local-disks": with_local_disks}
        upid = await self._api.write("POST", VM + "/migrate", params, node=node, vmid=vmid)
        status = await self.wait_task(upid, task_timeout)
        if Upid.parse(upid).is_ha:
            await self._wait_until_on(target, vmid, upid, deadline, task_timeout)
        self._guard.add(vmid, target)
        return status

    async def _wait_until_on(
        self, target: str, vmid: int, upid: str, deadline: float, task_timeout: float
    ) -> None:
        """Poll status/current on `target` until the VM is there and no longer locked."""

        async def arrived() -> bool:
            try:
                return (await self.vm_status(target, vmid)).lock != "migrate"
            except ProxmoxNotFound:
                return False  # still on the source node

        late = f"VM {vmid} did not arrive on {target} within {task_timeout:g}s"
        await self._poll_until(arrived, deadline, ProxmoxTaskTimeout(upid, task_timeout, late))

    async def agent_ping(self, node: str, vmid: int) -> None:
        """Ping the guest agent; raises if it is not configured or not running."""
        await self._guard.check(vmid)
        await self._api.write("POST", AGENT, node=node, vmid=vmid, command="ping")

    async def agent_shutdown(self, node: str, vmid: int) -> None:
        """Ask the guest agent to shut the guest down (no task is created)."""
        await self._guard.check(vmid)
        await self._api.write("POST", AGENT, node=node, vmid=vmid, command="shutdown")

    async def agent_interfaces(self, node: str, vmid: int) -> list[AgentInterface]:
        """The guest's network interfaces as the agent reports them."""
        await self._guard.check(vmid)
        data = await self._api.get(AGENT, node=node, vmid=vmid, command="network-get-interfaces")
        return parse(AgentInterfaces, data).result

    async def get_ipv4(self, node: str, vmid: int, *, config: VmConfig | None = None) -> Ipv4Lookup:
        """The VM's IPv4 on net0, or None with the reason (no agent, agent down, ...);
        `config` is the VM's config if the caller just read it (one request fewer)."""
        if config is None:
            config = await self.vm_config(node, vmid)
        if not config.agent_enabled:
            return Ipv4Lookup(reason=agent.NO_AGENT)
        mac = config.net0_mac
        if mac is None:
            return Ipv4Lookup(reason=agent.NO_NET0)
        try:
            interfaces = await self.agent_interfaces(node, vmid)
        except ProxmoxError as exc:
            reason = _agent_absence(exc)
            if reason is None:
                raise
            return Ipv4Lookup(reason=reason)
        return agent.pick_ipv4(interfaces, mac, self._ignored_networks)


def _agent_absence(exc: ProxmoxError) -> str | None:
    """The reason if `exc` says the agent cannot answer (as opposed to a real failure)."""
    if exc.status != 500:
        return None
    if "guest agent is not running" in exc.message:
        return agent.AGENT_DOWN
    if "No QEMU guest agent configured" in exc.message:
        return agent.NO_AGENT
    if "not running" in exc.message:
        return agent.VM_DOWN
    return None


def _check_migration(
    pre: MigratePreconditions, vmid: int, target: str, *, online: bool, local_disks: bool
) -> None:
    """Raise `MigrationBlocked` for what PVE would refuse, before sending the POST."""
    if pre.running and not online:
        raise MigrationBlocked(f"VM {vmid} is running: migrate with online=True")
    if target in pre.not_allowed_nodes:
        reason = pre.not_allowed_nodes[target]
        raise MigrationBlocked(f"VM {vmid} cannot move to {target}: {reason}")
    if pre.local_resources:
        raise MigrationBlocked(f"VM {vmid} uses local resources {pre.local_resources}")
    attached = [d.volid for d in pre.local_disks if not d.cdrom and not d.is_unused]
    if pre.running and attached and not local_disks:
        raise MigrationBlocked(
            f"VM {vmid} has local disks {attached}: live migration needs with_local_disks=True"
        )
