"""Power actions (status/start|stop|shutdown|reboot|reset|suspend|resume) and HA indirection.

HA-managed VMs get a `hastart`/`hastop` task that only records the requested state; the
VM changes on the next HA round (`Cluster.ha_round`), in a qmstart/qmshutdown run as root.
"""

from __future__ import annotations

from openvle_pvesim.cluster import VM
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError
from openvle_pvesim.handlers.common import req_vm, root_only_skiplock, task_user
from openvle_pvesim.tasks import TaskContext
from openvle_pvesim.vmconfig import not_running
from openvle_pvesim.vmops import (
    Body,
    reboot_body,
    shutdown_body,
    simple_body,
    spawn_power,
    start_body,
    stop_body,
)

HA_TASK_SECONDS = 1.0


async def ha_request(req: Request, vm: VM, kind: str, state: str, stop_after: int = 0) -> str:
    """`hastart`/`hastop`: set the service's requested state (and stop timeout), nothing else.

    `qm stop` asks the CRM for a hard stop (timeout 0), `qm shutdown` for a graceful one.
    """
    cluster = req.cluster
    svc = cluster.ha[vm.vmid]

    async def worker(ctx: TaskContext) -> None:
        await ctx.sleep(HA_TASK_SECONDS)
        svc.conf["state"] = state
        svc.stop_timeout = stop_after
        ctx.log(f"Requesting HA {'start' if state == 'started' else 'stop'} for VM {vm.vmid}")

    return await cluster.tasks.spawn(vm.node, kind, str(vm.vmid), task_user(req.principal), worker)


def body_without_lock(body: Body, vm: VM) -> Body:
    """With skiplock, run the body as if the VM had no config lock."""

    async def run(ctx: TaskContext) -> None:
        lock = vm.config.pop("lock", None)
        try:
            await body(ctx)
        finally:
            if lock is not None and "lock" not in vm.config:
                vm.config["lock"] = lock

    return run


async def power(req: Request, vm: VM, kind: str, body: Body) -> str:
    if root_only_skiplock(req):
        body = body_without_lock(body, vm)
    return await spawn_power(req.cluster, vm, kind, task_user(req.principal), body)


@route("POST", "/nodes/{node}/qemu/{vmid}/status/start")
async def start(req: Request) -> str:
    vm = req_vm(req)
    if req.cluster.ha_managed(vm.vmid):
        return await ha_request(req, vm, "hastart", "started")
    return await power(req, vm, "qmstart", start_body(req.cluster, vm))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/stop")
async def stop(req: Request) -> str:
    vm = req_vm(req)
    if req.cluster.ha_managed(vm.vmid):
        return await ha_request(req, vm, "hastop", "stopped")
    return await power(req, vm, "qmstop", stop_body(req.cluster, vm))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown")
async def shutdown(req: Request) -> str:
    vm = req_vm(req)
    force = bool(req.params.get("forceStop"))
    if vm.paused and not force:
        raise PVEError(500, "VM is paused - cannot shutdown")
    timeout = int(req.params.get("timeout", 60))
    if req.cluster.ha_managed(vm.vmid):
        return await ha_request(req, vm, "hastop", "stopped", timeout)
    return await power(req, vm, "qmshutdown", shutdown_body(req.cluster, vm, timeout, force))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/reboot")
async def reboot(req: Request) -> str:
    vm = req_vm(req)
    if not vm.running:
        raise not_running(vm.vmid)
    if vm.paused:
        raise PVEError(500, "VM is paused - cannot shutdown")
    timeout = int(req.params.get("timeout", 60))
    return await power(req, vm, "qmreboot", reboot_body(req.cluster, vm, timeout))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/reset")
async def reset(req: Request) -> str:
    vm = req_vm(req)
    if not vm.running:
        raise not_running(vm.vmid)

    def action() -> None:
        vm.paused = False

    return await power(req, vm, "qmreset", simple_body(vm, 1.0, action))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/suspend")
async def suspend(req: Request) -> str:
    vm = req_vm(req)
    if not vm.running:
        raise not_running(vm.vmid)
    todisk = bool(req.params.get("todisk"))
    if todisk and req.cluster.ha_managed(vm.vmid):
        raise PVEError(500, "Cannot suspend HA managed VM to disk")

    def pause() -> None:
        vm.paused = True

    def hibernate() -> None:
        vm.running = vm.paused = False
        vm.config["lock"] = "suspended"

    if todisk:
        return await power(req, vm, "qmsuspend", simple_body(vm, 3.0, hibernate))
    return await power(req, vm, "qmpause", simple_body(vm, 0.5, pause))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/resume")
async def resume(req: Request) -> str:
    """Resume a paused VM, or start one suspended to disk."""
    vm = req_vm(req)
    if vm.config.get("lock") == "suspended":
        vm.config.pop("lock")
        return await power(req, vm, "qmresume", start_body(req.cluster, vm))
    if not vm.running:
        raise not_running(vm.vmid)

    def action() -> None:
        vm.paused = False

    return await power(req, vm, "qmresume", simple_body(vm, 0.5, action))
