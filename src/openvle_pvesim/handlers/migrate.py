"""GET (preconditions) and POST /nodes/{node}/qemu/{vmid}/migrate."""

from __future__ import annotations

from typing import Any

from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError, param_error
from openvle_pvesim.handlers.common import check_lock, req_vm, task_user
from openvle_pvesim.tasks import TaskContext
from openvle_pvesim.vmconfig import parse_size, storage_of, volid, volume_keys
from openvle_pvesim.vmops import migrate_body, spawn_power

HA_TASK_SECONDS = 1.0


@route("GET", "/nodes/{node}/qemu/{vmid}/migrate")
async def preconditions(req: Request) -> dict[str, Any]:
    """Which nodes can take the VM and which local disks would have to move."""
    cluster = req.cluster
    vm = req_vm(req)
    local_disks = []
    for key in volume_keys(vm.config):
        value = str(vm.config[key])
        if not cluster.is_shared(value):
            disk: dict[str, Any] = {"volid": volid(value), "size": parse_size(value)}
            disk["cdrom"] = 1 if "media=cdrom" in value else 0
            disk["is_unused"] = 0
            local_disks.append(disk)
    storages = {storage_of(str(vm.config[k])) for k in volume_keys(vm.config)}
    allowed, not_allowed = [], {}
    for name, node in cluster.nodes.items():
        if name == vm.node:
            continue
        missing = sorted(s for s in storages if s not in cluster.storages)
        if node.online and not missing:
            allowed.append(name)
        else:
            not_allowed[name] = {"unavailable_storages": missing}
    result: dict[str, Any] = {
        "running": 1 if vm.running else 0,
        "allowed_nodes": allowed,
        "not_allowed_nodes": not_allowed,
        "local_disks": local_disks,
        "local_resources": [],
        "mapped-resources": [],
        "mapped-resource-info": {},
    }
    if cluster.version != "8.4":
        result["has-dbus-vmstate"] = 1
        result["dependent-ha-resources"] = []
    return result


@route("POST", "/nodes/{node}/qemu/{vmid}/migrate")
async def migrate(req: Request) -> str:
    """`qmigrate` (or `hamigrate` for HA-managed VMs) with `lock: migrate` meanwhile."""
    cluster = req.cluster
    vm = req_vm(req)
    target = str(req.params["target"])
    if target == vm.node:
        raise param_error(target="target is local node.")
    cluster.node(target)
    check_lock(vm)
    online = bool(req.params.get("online"))
    if vm.running and not online:
        raise PVEError(500, "can't migrate running VM without --online")
    user = task_user(req.principal)
    if cluster.ha_managed(vm.vmid):
        svc = cluster.ha[vm.vmid]

        async def request(ctx: TaskContext) -> None:
            await ctx.sleep(HA_TASK_SECONDS)
            svc.migrate_to = target
            ctx.log(f"Requesting HA migration for VM {vm.vmid} to node {target}")

        return await cluster.tasks.spawn(vm.node, "hamigrate", str(vm.vmid), user, request)
    local = bool(req.params.get("with-local-disks"))
    body = migrate_body(cluster, vm, target, online=online, local_disks=local)
    return await spawn_power(cluster, vm, "qmigrate", user, body)
