"""Snapshots: list, create (`qmsnapshot`), delete (`qmdelsnapshot`), rollback (`qmrollback`).

As qemu-server API2/Qemu.pm and pve-guest-common AbstractConfig.pm: the names `current`
and `pending` are reserved (synchronous 500), the worker takes the config lock `snapshot`
/ `snapshot-delete` / `rollback` while it runs and re-checks the name (`snapshot name 'x'
already used`, `snapshot 'x' does not exist`). A snapshot keeps a copy of the config and
the current config names it as `parent`. Rollback restores that config and leaves the VM
stopped (there is no RAM state), then starts it with `start=1` (which needs VM.PowerMgmt).
"""

from __future__ import annotations

import time
from typing import Any

from openvle_pvesim.cluster import VM
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError
from openvle_pvesim.handlers.common import req_vm, task_user
from openvle_pvesim.tasks import TaskContext, TaskError
from openvle_pvesim.vmops import check_unlocked, locked_worker, set_running, spawn_power

SNAPSHOT_SECONDS = 1.0
SNAPSHOT_KEYS = ("description", "snaptime", "vmstate", "snapstate")


def listing(vm: VM) -> list[dict[str, Any]]:
    """The snapshot items plus `current` (`You are here!`), as snapshot_list builds them."""
    out: list[dict[str, Any]] = []
    for name, snap in vm.snapshots.items():
        item: dict[str, Any] = {
            "name": name,
            "snaptime": snap.get("snaptime", 0),
            "vmstate": 1 if snap.get("vmstate") else 0,
            "description": snap.get("description", ""),
        }
        if snap.get("parent"):
            item["parent"] = snap["parent"]
        out.append(item)
    current: dict[str, Any] = {
        "name": "current",
        "digest": vm.digest(),
        "running": 1 if vm.running else 0,
        "description": "You are here!",
    }
    if vm.config.get("parent"):
        current["parent"] = vm.config["parent"]
    out.append(current)
    return out


def find(vm: VM, name: str) -> dict[str, Any]:
    if name not in vm.snapshots:
        raise TaskError(f"snapshot '{name}' does not exist")
    return vm.snapshots[name]


@route("GET", "/nodes/{node}/qemu/{vmid}/snapshot")
async def list_snapshots(req: Request) -> list[dict[str, Any]]:
    return listing(req_vm(req))


@route("GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}")
async def snapshot_index(req: Request) -> list[dict[str, Any]]:
    vm = req_vm(req)
    if str(req.params["snapname"]) not in vm.snapshots:
        raise PVEError(500, f"snapshot '{req.params['snapname']}' does not exist")
    return [{"rel": "child", "href": "config"}, {"rel": "child", "href": "rollback"}]


@route("GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config")
async def snapshot_config(req: Request) -> dict[str, Any]:
    vm = req_vm(req)
    name = str(req.params["snapname"])
    if name not in vm.snapshots:
        raise PVEError(500, f"snapshot '{name}' does not exist")
    return dict(vm.snapshots[name])


@route("POST", "/nodes/{node}/qemu/{vmid}/snapshot")
async def create_snapshot(req: Request) -> str:
    vm = req_vm(req)
    name = str(req.params["snapname"])
    if name == "current" or name.lower() == "pending":
        raise PVEError(500, f"unable to use snapshot name '{name.lower()}' (reserved name)")
    description = str(req.params.get("description", ""))
    vmstate = bool(req.params.get("vmstate")) and vm.running

    async def body(ctx: TaskContext) -> None:
        check_unlocked(vm)
        if name in vm.snapshots:
            raise TaskError(f"snapshot name '{name}' already used")
        vm.config["lock"] = "snapshot"
        try:
            await ctx.sleep(SNAPSHOT_SECONDS)
            saved = {k: v for k, v in vm.config.items() if k != "lock"}
            saved.update({"snaptime": int(time.time()), "description": description})
            if vmstate:
                saved["vmstate"] = 1
            vm.snapshots[name] = saved
            vm.config["parent"] = name
        finally:
            vm.config.pop("lock", None)

    return await spawn_power(req.cluster, vm, "qmsnapshot", task_user(req.principal), body)


@route("DELETE", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}")
async def delete_snapshot(req: Request) -> str:
    vm = req_vm(req)
    name = str(req.params["snapname"])
    force = bool(req.params.get("force"))

    async def body(ctx: TaskContext) -> None:
        snap = find(vm, name)
        if not force:
            check_unlocked(vm)
        vm.config["lock"] = "snapshot-delete"
        try:
            await ctx.sleep(SNAPSHOT_SECONDS)
            del vm.snapshots[name]
            for other in [vm.config, *vm.snapshots.values()]:  # children move up a level
                if other.get("parent") == name:
                    if snap.get("parent"):
                        other["parent"] = snap["parent"]
                    else:
                        other.pop("parent", None)
        finally:
            vm.config.pop("lock", None)

    return await spawn_power(req.cluster, vm, "qmdelsnapshot", task_user(req.principal), body)


@route("POST", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback")
async def rollback(req: Request) -> str:
    cluster = req.cluster
    vm = req_vm(req)
    name = str(req.params["snapname"])
    start = bool(req.params.get("start"))
    if start:
        req.principal.check(f"/vms/{vm.vmid}", ["VM.PowerMgmt"])

    async def body(ctx: TaskContext) -> None:
        snap = find(vm, name)
        check_unlocked(vm)
        vm.config["lock"] = "rollback"
        await ctx.sleep(SNAPSHOT_SECONDS)
        set_running(vm, False)
        vm.config = {k: v for k, v in snap.items() if k not in SNAPSHOT_KEYS}
        vm.config["parent"] = name
        if start or snap.get("vmstate"):
            set_running(vm, True)

    worker = locked_worker(cluster, vm.vmid, "qmrollback", body)
    return await cluster.tasks.spawn(
        vm.node, "qmrollback", str(vm.vmid), task_user(req.principal), worker
    )
