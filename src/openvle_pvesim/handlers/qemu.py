"""VM lifecycle: create, destroy, convert to template, and the live status/current."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from openvle_pvesim.cluster import VM, Cluster, HAService
from openvle_pvesim.contract import Request, route
from openvle_pvesim.disks import set_drive
from openvle_pvesim.errors import PVEError
from openvle_pvesim.handlers.common import check_lock, req_vm, root_only_skiplock, task_user
from openvle_pvesim.handlers.config import check_perms, split_changes
from openvle_pvesim.livestats import QEMU, vmstatus
from openvle_pvesim.tasks import TaskContext, TaskError
from openvle_pvesim.vmconfig import (
    DISK_RE,
    agent_enabled,
    net_mac,
    normalise,
    parse_props,
    volid,
    with_new_mac,
)
from openvle_pvesim.vmops import check_unlocked, fault_check, locked_worker, set_running, start_body

CREATE_SECONDS = 1.5
DESTROY_SECONDS = 1.5
TEMPLATE_SECONDS = 2.0


@route("GET", "/nodes/{node}/qemu/{vmid}/status/current")
async def status_current(req: Request) -> dict[str, Any]:
    """The live status (no pvestatd lag), with the HA service state."""
    vm = req_vm(req)
    return vm_status(req.cluster, vm)


def vm_status(cluster: Cluster, vm: VM) -> dict[str, Any]:
    """API2/Qemu.pm `vm_status`: the full `vmstatus`, `ha`, and from the config the
    display's `spice`/`clipboard` and `agent`."""
    status = vmstatus(cluster, vm, full=True)
    status["ha"] = ha_status(cluster, vm.vmid)
    if vm.config.get("vga"):
        vga = parse_props(str(vm.config["vga"]), "type")
        kind = vga.get("type", "")
        if kind.startswith("virtio") or kind.startswith("qxl"):
            status["spice"] = 1
        status["clipboard"] = vga.get("clipboard")
    if agent_enabled(vm.config):
        status["agent"] = 1
    return status


def ha_status(cluster: Cluster, vmid: int) -> dict[str, Any]:
    svc = cluster.ha.get(vmid)
    if svc is None:
        return {"managed": 0}
    return {"managed": 1, "state": svc.crm_state}


def allocate_disks(cluster: Cluster, vmid: int, changes: dict[str, Any]) -> dict[str, Any]:
    """The new config: drives allocated (`disks.set_drive`), other values normalised."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if DISK_RE.match(key):
            set_drive(out, vmid, key, str(value))
        else:
            out[key] = normalise(key, value)
    return out


@route("POST", "/nodes/{node}/qemu")
async def create_vm(req: Request) -> str:
    """`qmcreate`: config with `lock: create`, disks allocated, pool added at the end."""
    cluster = req.cluster
    node = cluster.node(str(req.params["node"])).name
    vmid = int(req.params["vmid"])
    if req.params.get("archive"):
        raise PVEError(500, "restore from archive is not supported by the simulator")
    if vmid in cluster.vms:
        other = cluster.vms[vmid].node
        raise PVEError(
            500, f"unable to create VM {vmid} - VM {vmid} already exists on node '{other}'"
        )
    pool = req.params.get("pool")
    if pool is not None and pool not in cluster.pools:
        raise PVEError(403, f"Permission check failed (pool '{pool}' does not exist)")
    changes, _ = split_changes(req)
    ha_managed = bool(changes.pop("ha-managed", False))
    for key in ("pool", "start", "unique", "storage", "bwlimit", "force", "live-restore"):
        changes.pop(key, None)
    check_perms(req, list(changes), None if pool is None else str(pool))
    for key, value in changes.items():
        if DISK_RE.match(key) and ":" in str(value):
            sid = str(value).split(":", 1)[0]
            req.principal.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    config = allocate_disks(cluster, vmid, changes)
    for key, value in list(config.items()):
        if re.match(r"^net\d+$", key) and net_mac(str(value)) is None:
            config[key] = with_new_mac(str(value), cluster.new_mac())
    if "smbios1" not in config or "uuid=" not in str(config["smbios1"]):
        prefix = f"{config['smbios1']}," if "smbios1" in config else ""
        config["smbios1"] = f"{prefix}uuid={uuid.uuid4()}"
    config.setdefault("vmgenid", str(uuid.uuid4()))
    # qemu-server create_vm (MetaInfo.pm new_meta_info_string): `meta` is always set
    # anew, with the QEMU that created the VM and when
    config["meta"] = f"creation-qemu={QEMU[cluster.version][0]},ctime={int(time.time())}"
    config["lock"] = "create"
    start = bool(req.params.get("start"))

    async def worker(ctx: TaskContext) -> None:
        fault_check(cluster, "qmcreate", vmid)
        if vmid in cluster.vms:
            raise TaskError(f"unable to create VM {vmid}: config file already exists")
        vm = VM(vmid, node, config)
        cluster.vms[vmid] = vm
        await ctx.sleep(CREATE_SECONDS)
        vm.config.pop("lock", None)
        if pool is not None:
            cluster.set_pool(vmid, str(pool))
        if ha_managed:
            cluster.ha[vmid] = HAService(vmid, {"state": "started" if start else "stopped"})
        if start and not ha_managed:
            await start_body(cluster, vm)(ctx)

    return await cluster.tasks.spawn(node, "qmcreate", str(vmid), task_user(req.principal), worker)


def linked_clones_of(cluster: Cluster, vm: VM) -> str | None:
    """A base volume of template `vm` still used by a linked clone, if any."""
    bases = {volid(str(v)) for k, v in vm.config.items() if DISK_RE.match(k)}
    for other in cluster.vms.values():
        if other.vmid == vm.vmid:
            continue
        for key, value in other.config.items():
            if DISK_RE.match(key) and "/" in str(value):
                base = str(value).split("/", 1)[0]
                if base in bases:
                    return base
    return None


@route("DELETE", "/nodes/{node}/qemu/{vmid}")
async def destroy_vm(req: Request) -> str:
    """`qmdestroy`: sync protection/HA/running checks; lock and base-volume checks inside."""
    cluster = req.cluster
    vm = req_vm(req)
    skiplock = root_only_skiplock(req)
    purge = bool(req.params.get("purge"))
    if vm.config.get("protection"):
        raise PVEError(500, f"can't remove VM {vm.vmid} - protection mode enabled")
    if vm.vmid in cluster.ha and not purge:
        raise PVEError(
            500,
            f"unable to remove VM {vm.vmid} - used in HA resources and purge parameter not set.",
        )
    if vm.running:
        raise PVEError(500, f"VM {vm.vmid} is running - destroy failed")

    async def body(ctx: TaskContext) -> None:
        if not skiplock:
            check_unlocked(vm)
        base = linked_clones_of(cluster, vm) if vm.is_template else None
        if base is not None:
            raise TaskError(f"base volume '{base}' is still in use by linked cloned")
        vm.config["lock"] = "destroyed"
        await ctx.sleep(DESTROY_SECONDS)
        remove_vm(cluster, vm.vmid, purge)

    worker = locked_worker(cluster, vm.vmid, "qmdestroy", body)
    return await cluster.tasks.spawn(
        vm.node, "qmdestroy", str(vm.vmid), task_user(req.principal), worker
    )


def remove_vm(cluster: Cluster, vmid: int, purge: bool) -> None:
    cluster.vms.pop(vmid, None)
    cluster.lease_holders.pop(cluster.leases.pop(vmid, ""), None)
    cluster.set_pool(vmid, None)
    if purge:
        cluster.ha.pop(vmid, None)
        for rule in cluster.ha_rules.values():
            members = [r for r in str(rule.get("resources", "")).split(",") if r != f"vm:{vmid}"]
            rule["resources"] = ",".join(members)


@route("POST", "/nodes/{node}/qemu/{vmid}/template")
async def make_template(req: Request) -> str:
    """`qmtemplate`: disks become base volumes and `template: 1` is set."""
    cluster = req.cluster
    vm = req_vm(req)
    check_lock(vm)
    if vm.is_template:
        raise PVEError(500, "you can't convert a template to a template")
    if vm.running:
        raise PVEError(500, "you can't convert a VM to template if VM is running")
    if vm.snapshots:
        raise PVEError(500, "unable to create template, because VM contains snapshots")

    async def body(ctx: TaskContext) -> None:
        check_unlocked(vm)
        await ctx.sleep(TEMPLATE_SECONDS)
        for key, value in list(vm.config.items()):
            if DISK_RE.match(key) and "media=cdrom" not in str(value):
                vm.config[key] = str(value).replace(f"vm-{vm.vmid}-disk-", f"base-{vm.vmid}-disk-")
        vm.config["template"] = 1
        set_running(vm, False)

    worker = locked_worker(cluster, vm.vmid, "qmtemplate", body)
    return await cluster.tasks.spawn(
        vm.node, "qmtemplate", str(vm.vmid), task_user(req.principal), worker
    )
