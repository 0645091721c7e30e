"""VM power workers and the HA manager round, shared by the handlers and HA.

Each worker runs inside a task: it honours injected faults, takes the VM's flock (10 s
default, scaled) and re-checks what PVE re-checks inside the worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from openvle_pvesim.tasks import TaskContext, TaskError
from openvle_pvesim.vmconfig import agent_enabled, disk_keys, format_gib, parse_size, volid

if TYPE_CHECKING:
    from openvle_pvesim.model import VM, ClusterState, HAService

Body = Callable[[TaskContext], Awaitable[None]]

START_SECONDS = 3.0
STOP_SECONDS = 1.5
AGENT_SHUTDOWN_SECONDS = 4.0
ACPI_SHUTDOWN_SECONDS = 8.0
DEFAULT_FAILURES = {
    "qmstart": "start failed: QEMU exited with code 1",
    "qmclone": "clone failed: command '/usr/bin/qemu-img convert' failed: exit code 1",
    "qmshutdown": "VM quit/powerdown failed - got timeout",
    "qmigrate": "migration aborted",
    "qmdestroy": "error during cfs-locked 'storage' operation: got lock timeout - aborting",
}


def fault_check(cluster: ClusterState, kind: str, vmid: int) -> None:
    """Raise the injected task failure or lock timeout for this task type, if any."""
    message = cluster.faults.take("lock_timeout", kind)
    if message is not None:
        raise TaskError(
            message or f"can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"
        )
    message = cluster.faults.take("task_fail", kind)
    if message is not None:
        raise TaskError(message or DEFAULT_FAILURES.get(kind, f"{kind} failed"))


def locked_worker(
    cluster: ClusterState, vmid: int, kind: str, body: Body, timeout: float = 10.0
) -> Body:
    """Wrap `body` with the fault check and the VM's exclusive flock."""

    async def worker(ctx: TaskContext) -> None:
        fault_check(cluster, kind, vmid)
        lock = cluster.flock(vmid)
        await lock.acquire(cluster.scaled(timeout))
        try:
            await body(ctx)
        finally:
            await lock.release()

    return worker


def check_unlocked(vm: VM) -> None:
    if "lock" in vm.config:
        raise TaskError(f"VM is locked ({vm.config['lock']})")


def set_running(vm: VM, running: bool) -> None:
    vm.running = running
    vm.paused = False
    if running:
        vm.started_at = time.time()
    else:
        vm.dhcp_ip = None


def start_body(cluster: ClusterState, vm: VM) -> Body:
    async def body(ctx: TaskContext) -> None:
        if vm.is_template:
            raise TaskError("you can't start a vm if it's a template")
        check_unlocked(vm)
        if vm.running:
            raise TaskError(f"VM {vm.vmid} already running")
        await launch(cluster, ctx, vm)

    return body


async def launch(cluster: ClusterState, ctx: TaskContext, vm: VM) -> None:
    """Start QEMU: its memory is taken at once (`starting`), the VM runs after the boot.

    As KVM, QEMU cannot set up the guest's RAM when the node's free memory is smaller
    than the guest's full memory, and exits (`usage` module: what running guests hold).
    """
    node = cluster.nodes[vm.node]
    free = node.maxmem - cluster.node_used(vm.node)
    if vm.maxmem > free:
        ctx.log("kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory")
        raise TaskError("start failed: QEMU exited with code 1")
    vm.starting = True
    try:
        await ctx.sleep(START_SECONDS)
        set_running(vm, True)
    finally:
        vm.starting = False


def stop_body(cluster: ClusterState, vm: VM) -> Body:
    async def body(ctx: TaskContext) -> None:
        check_unlocked(vm)
        if vm.running:
            await ctx.sleep(STOP_SECONDS)
            set_running(vm, False)

    return body


def shutdown_body(cluster: ClusterState, vm: VM, timeout: int = 60, force: bool = False) -> Body:
    """Agent `guest-shutdown` when enabled and answering, ACPI powerdown otherwise."""

    async def body(ctx: TaskContext) -> None:
        check_unlocked(vm)
        if not vm.running:
            return
        seconds = ACPI_SHUTDOWN_SECONDS
        vm.last_shutdown = "acpi"
        if agent_enabled(vm.config) and agent_answers(cluster, vm):
            seconds, vm.last_shutdown = AGENT_SHUTDOWN_SECONDS, "agent"
        if seconds > timeout:
            await ctx.sleep(timeout)
            if not force:
                raise TaskError("VM quit/powerdown failed - got timeout")
            await ctx.sleep(STOP_SECONDS)
        else:
            await ctx.sleep(seconds)
        set_running(vm, False)

    return body


def agent_answers(cluster: ClusterState, vm: VM) -> bool:
    """Whether the guest agent would answer guest-ping now."""
    if not vm.agent_running or not vm.running:
        return False
    return cluster.faults.take("agent_not_running", str(vm.vmid)) is None


def reboot_body(cluster: ClusterState, vm: VM, timeout: int = 60) -> Body:
    shutdown = shutdown_body(cluster, vm, timeout)

    async def body(ctx: TaskContext) -> None:
        await shutdown(ctx)
        await launch(cluster, ctx, vm)

    return body


def simple_body(vm: VM, seconds: float, action: Callable[[], None]) -> Body:
    """A short action on a running VM (reset, suspend, resume)."""

    async def body(ctx: TaskContext) -> None:
        check_unlocked(vm)
        await ctx.sleep(seconds)
        action()

    return body


async def spawn_power(cluster: ClusterState, vm: VM, kind: str, user: str, body: Body) -> str:
    return await cluster.tasks.spawn(
        vm.node, kind, str(vm.vmid), user, locked_worker(cluster, vm.vmid, kind, body)
    )


async def ha_apply(cluster: ClusterState) -> None:
    """One CRM/LRM round: start, stop or migrate HA services whose state differs."""
    for vmid, svc in list(cluster.ha.items()):
        vm = cluster.vms.get(vmid)
        if vm is None or svc.busy or svc.state == "ignored" or svc.crm_state == "error":
            continue
        want_running = svc.state in ("started", "enabled")
        if svc.migrate_to and svc.migrate_to != vm.node:
            await ha_run(cluster, svc, vm, "migrate")
        elif want_running and not vm.running and not vm.is_template:
            await ha_run(cluster, svc, vm, "start")
        elif not want_running and vm.running:
            await ha_run(cluster, svc, vm, "stop")
        else:
            svc.crm_state = ha_settled_state(svc.state, vm.running)


def ha_settled_state(state: str, running: bool) -> str:
    if state == "disabled":
        return "disabled"
    return "started" if running else "stopped"


async def ha_run(cluster: ClusterState, svc: HAService, vm: VM, action: str) -> None:
    """Run the LRM's qmstart/qmshutdown/qmigrate for a service, as root@pam."""
    svc.busy = True
    if action == "start":
        svc.crm_state, kind, body = "request_start", "qmstart", start_body(cluster, vm)
    elif action == "stop" and svc.stop_timeout == 0:
        svc.crm_state, kind, body = "request_stop", "qmstop", stop_body(cluster, vm)
    elif action == "stop":
        body = shutdown_body(cluster, vm, svc.stop_timeout, force=True)
        svc.crm_state, kind = "request_stop", "qmshutdown"
    else:
        target = svc.migrate_to or vm.node
        svc.crm_state, kind = "migrate", "qmigrate"
        body = migrate_body(cluster, vm, target, online=vm.running, local_disks=False)
    upid = await spawn_power(cluster, vm, kind, "root@pam", body)

    def settle() -> None:
        """Record the outcome; after more than max_restart failures the service is `error`."""
        svc.busy = False
        svc.migrate_to = None
        task = cluster.tasks.tasks[upid]
        svc.failures = 0 if task.exitstatus == "OK" else svc.failures + 1
        if svc.failures > int(svc.conf.get("max_restart", 1)):
            svc.crm_state = "error"
        else:
            svc.crm_state = ha_settled_state(svc.state, vm.running)

    cluster.tasks.watch(upid, settle)


MIGRATE_BANDWIDTH = 1024**3  # bytes per simulated second
OFFLINE_MIGRATE_SECONDS = 2.0


def migrate_body(
    cluster: ClusterState, vm: VM, target: str, online: bool, local_disks: bool
) -> Body:
    """Offline (config move), online (RAM copy) and local-disk migration, `lock: migrate`."""

    async def body(ctx: TaskContext) -> None:
        check_unlocked(vm)
        local = [k for k in disk_keys(vm.config) if not cluster.is_shared(str(vm.config[k]))]
        if local and vm.running and not local_disks:
            raise TaskError(
                "can't live migrate attached local disks without with-local-disks option"
            )
        if vm.running and not online:
            raise TaskError("can't migrate running VM without --online")
        vm.config["lock"] = "migrate"
        try:
            ctx.log(f"starting migration of VM {vm.vmid} to node '{target}'")
            await copy_disks(cluster, ctx, vm, local)
            if vm.running:
                await copy_memory(ctx, vm)
            else:
                await ctx.sleep(OFFLINE_MIGRATE_SECONDS)
            vm.node = target
            ctx.log("migration finished successfully (duration 00:00:05)")
        finally:
            vm.config.pop("lock", None)

    return body


async def copy_disks(cluster: ClusterState, ctx: TaskContext, vm: VM, keys: list[str]) -> None:
    for key in keys:
        size = parse_size(str(vm.config[key]))
        ctx.log(f"copying local disk '{volid(str(vm.config[key]))}' ({key})")
        await ctx.sleep(size / MIGRATE_BANDWIDTH / 2)
        ctx.log(f"{key}: transferred {format_gib(size)} of {format_gib(size)} (100.00%)")


async def copy_memory(ctx: TaskContext, vm: VM) -> None:
    total = vm.maxmem
    ctx.log("starting online/live migration")
    for step in (1, 2, 3, 4):
        await ctx.sleep(total / MIGRATE_BANDWIDTH / 4)
        done = total * step // 4
        ctx.log(f"migration active, transferred {format_gib(done)} of {format_gib(total)} VM-state")
    ctx.log("migration status: completed")
