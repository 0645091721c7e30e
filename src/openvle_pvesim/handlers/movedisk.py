"""POST /nodes/{node}/qemu/{vmid}/move_disk (`qm disk move`), as qemu-server API2/Qemu.pm
`move_vm_disk` has it: with `storage` a `qmmove` task copies the volume to that storage
(QemuServer.pm `clone_disk`: qemu-img for a stopped VM, a drive mirror for a running
one; BlockJob.pm's log lines) and keeps the source as `unusedN` unless `delete`; with
`target-vmid` it reassigns the volume to another VM on the same node (renamed to the
target's `vm-<id>-disk-<n>`). The checks run before the task (500/400) and again under
the VM's flock inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from openvle_pvesim.cluster import VM, Cluster
from openvle_pvesim.contract import Request, route
from openvle_pvesim.disks import add_unused, disk_numbers, drive_options, print_drive
from openvle_pvesim.errors import PVEError, param_error
from openvle_pvesim.handlers.clone import allocate, copy_volume
from openvle_pvesim.handlers.common import req_vm, task_user
from openvle_pvesim.tasks import TaskContext, TaskError
from openvle_pvesim.vmconfig import format_gib, parse_size, storage_of, volid
from openvle_pvesim.vmops import Body, locked_worker

MIRROR_STEPS = 4
MODIFIED = "detected modified configuration - file changed by other user? Try again."


@dataclass(frozen=True)
class Move:
    """A storage move as the request fixed it."""

    vmid: int
    disk: str
    storage: str
    delete: bool
    digest: str | None


def check_move(cluster: Cluster, vm: VM, move: Move) -> str:
    """`$load_and_check_move`: the drive string to move, else PVE's error."""
    if "lock" in vm.config:
        raise PVEError(500, f"VM is locked ({vm.config['lock']})")
    if move.digest and move.digest != vm.digest():
        raise PVEError(500, MODIFIED)
    value = vm.config.get(move.disk)
    if not value:
        raise PVEError(500, f"disk '{move.disk}' does not exist")
    value = str(value)
    if ":" not in volid(value):
        raise PVEError(500, f"disk '{move.disk}' has no associated volume")
    if "media=cdrom" in value:
        raise PVEError(500, "you can't move a cdrom")
    if storage_of(value) == move.storage:
        raise PVEError(500, "you can't move to the same storage with same format")
    target = cluster.storages.get(move.storage)
    if target is None:
        raise PVEError(500, f"storage '{move.storage}' does not exist")
    if "images" not in target.content.split(","):
        raise param_error(storage=f"storage '{move.storage}' does not support vm images")
    if move.delete and in_snapshot(vm, volid(value)):
        raise PVEError(500, "you can't move a disk with snapshots and delete the source")
    return value


def in_snapshot(vm: VM, vol: str) -> bool:
    """Drive.pm `is_volume_in_use` for one disk: a snapshot still references the volume."""
    return any(volid(str(v)) == vol for snap in vm.snapshots.values() for v in snap.values())


def new_volume(vm: VM, sid: str) -> str:
    """The lowest free `vm-<id>-disk-<n>` on `sid` (`base-` for a template)."""
    used = disk_numbers(vm.config, vm.vmid, sid)
    number = next(n for n in range(len(used) + 1) if n not in used)
    prefix = "base" if vm.is_template else "vm"
    return f"{sid}:{prefix}-{vm.vmid}-disk-{number}"


async def mirror(ctx: TaskContext, version: str, disk: str, size: int) -> None:
    """BlockJob.pm's drive-mirror log (job `mirror-<drive>` on 9.x, `drive-<drive>` on 8)."""
    job = f"mirror-{disk}" if version != "8.4" else f"drive-{disk}"
    ctx.log(f"drive mirror is starting for drive-{disk}")
    for step in range(1, MIRROR_STEPS + 1):
        await ctx.sleep(size / (0.5 * 1024**3) / MIRROR_STEPS)
        done = size * step // MIRROR_STEPS
        ready = ", ready" if step == MIRROR_STEPS else ""
        ctx.log(
            f"{job}: transferred {format_gib(done)} of {format_gib(size)} "
            f"({done * 100 / max(size, 1):.2f}%) in {step}s{ready}"
        )
    ctx.log("all 'mirror' jobs are ready")
    ctx.log(f"{job}: Completing block job...")
    ctx.log(f"{job}: Completed successfully.")
    ctx.log(f"{job}: mirror-job finished")


async def run_move(cluster: Cluster, ctx: TaskContext, vm: VM, move: Move) -> None:
    """`$move_updatefn` under the flock: copy, switch the drive, keep or free the source."""
    try:
        value = check_move(cluster, vm, move)
    except PVEError as exc:
        raise TaskError(exc.message) from None
    old = volid(value)
    ctx.log(
        f"copying volume '{old}' from current storage '{storage_of(value)}' "
        f"to target storage '{move.storage}'"
    )
    ctx.log(f"create full clone of drive {move.disk} ({old})")
    target = new_volume(vm, move.storage)
    await allocate(cluster, ctx, move.storage, vm.node)
    ctx.log(f"allocated target volume '{target}'")
    if vm.running:
        await mirror(ctx, cluster.version, move.disk, parse_size(value))
    else:
        await copy_volume(cluster, ctx, move.storage, parse_size(value))
    vm.config[move.disk] = print_drive(target, drive_options(value)[1])
    if move.delete:
        ctx.log(f"removing source volume '{old}' after successful copy")
    else:
        ctx.log(f"adding source volume '{old}' as '{add_unused(vm.config, old)}' to config")
    cluster.usage.update(vm)


async def move_to_storage(req: Request, vm: VM, move: Move) -> str:
    cluster = req.cluster
    req.principal.check(f"/storage/{move.storage}", ["Datastore.AllocateSpace"])
    check_move(cluster, vm, move)

    async def body(ctx: TaskContext) -> None:
        await run_move(cluster, ctx, vm, move)

    worker = locked_worker(cluster, vm.vmid, "qmmove", body)
    return await cluster.tasks.spawn(
        vm.node, "qmmove", str(vm.vmid), task_user(req.principal), worker
    )


@route("POST", "/nodes/{node}/qemu/{vmid}/move_disk")
async def move_disk(req: Request) -> str:
    params = req.params
    storage, target = params.get("storage"), params.get("target-vmid")
    if storage is not None and target is not None:
        msg = "either set 'storage' or 'target-vmid', but not both"
        raise param_error(**{"target-vmid": msg, "storage": msg})
    vm = req_vm(req)
    if target is not None:
        return await reassign(req, vm, int(target))
    if storage is None:
        msg = "both 'storage' and 'target-vmid' missing, either needs to be set"
        raise param_error(**{"target-vmid": msg, "storage": msg})
    digest = params.get("digest")
    move = Move(
        vm.vmid,
        str(params["disk"]),
        str(storage),
        bool(params.get("delete")),
        None if digest is None else str(digest),
    )
    return await move_to_storage(req, vm, move)


@dataclass(frozen=True)
class Reassign:
    """A disk handed to another VM: source key, target VM and key, digests."""

    disk: str
    target: int
    target_disk: str
    digest: str | None
    target_digest: str | None


def check_reassign(cluster: Cluster, vm: VM, plan: Reassign) -> tuple[VM, str]:
    """`$load_and_check_reassign_configs`: (target VM, the drive string), else the error."""
    other = cluster.vms.get(plan.target)
    if other is None:
        raise PVEError(500, f"could not find target VM {plan.target}")
    if other.node != vm.node:
        raise PVEError(500, f"Both VMs need to be on the same node ({vm.node} != {other.node})")
    for each in (vm, other):
        if "lock" in each.config:
            raise PVEError(500, f"VM is locked ({each.config['lock']})")
    if vm.is_template or other.is_template:
        raise PVEError(500, "Can't move disks from or to template VMs")
    for each, digest in ((vm, plan.digest), (other, plan.target_digest)):
        if digest and digest != each.digest():
            raise PVEError(500, f"VM {each.vmid}: {MODIFIED}")
    value = vm.config.get(plan.disk)
    if value is None:
        raise PVEError(500, f"Disk '{plan.disk}' for VM '{vm.vmid}' does not exist")
    if other.config.get(plan.target_disk):
        raise PVEError(
            500, f"Target disk key '{plan.target_disk}' is already in use for VM '{plan.target}'"
        )
    return other, check_reassign_volume(vm, plan, str(value))


def check_reassign_volume(vm: VM, plan: Reassign, value: str) -> str:
    if ":" not in volid(value):
        raise PVEError(500, f"disk '{plan.disk}' has no associated volume")
    if "media=cdrom" in value:
        raise PVEError(500, "CD drive contents can't be moved to another VM")
    if in_snapshot(vm, volid(value)):
        raise PVEError(500, "Can't move disk used by a snapshot to another VM")
    if vm.running and not plan.disk.startswith("unused"):
        raise PVEError(
            500,
            "Cannot move disk to another VM while the source VM is running - detach first",
        )
    return value


def renamed(value: str, source: VM, target: VM) -> str:
    """Storage.pm `rename_volume`: the lowest free `vm-<target>-disk-<n>` on that storage;
    a linked clone keeps its base."""
    vol = volid(value)
    sid, name = vol.split(":", 1)
    base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    number = new_volume(target, sid).rsplit("-", 1)[1]
    return f"{sid}:{base}vm-{target.vmid}-disk-{number}{value[len(vol) :]}"


def drop_from_boot(ctx: TaskContext, vm: VM, disk: str) -> None:
    """Remove the disk from `boot: order=...` (QemuServer.pm `print_bootorder`)."""
    boot = str(vm.config.get("boot", ""))
    if not boot.startswith("order="):
        return
    devices = boot[len("order=") :].split(";")
    if disk in devices:
        ctx.log(f"removing disk '{disk}' from boot order config")
        kept = [d for d in devices if d != disk]
        vm.config["boot"] = f"order={';'.join(kept)}" if kept else ""


async def reassign(req: Request, vm: VM, target: int) -> str:
    """`qmmove` with id `<vmid>-<disk>><target>-<target disk>` under both VMs' flocks."""
    cluster, params = req.cluster, req.params
    if req.principal.userid != "root@pam" or req.principal.tokenid:
        req.principal.check(f"/vms/{target}", ["VM.Config.Disk"])
    if target == vm.vmid:
        raise param_error(**{"target-vmid": "must be different than source VMID to reassign disk"})
    disk = str(params["disk"])
    digest, target_digest = params.get("digest"), params.get("target-digest")
    plan = Reassign(
        disk,
        target,
        str(params.get("target-disk") or disk),
        None if digest is None else str(digest),
        None if target_digest is None else str(target_digest),
    )
    value = check_reassign(cluster, vm, plan)[1]
    req.principal.check(f"/storage/{storage_of(value)}", ["Datastore.AllocateSpace"])

    async def body(ctx: TaskContext) -> None:
        try:
            other, drive = check_reassign(cluster, vm, plan)
        except PVEError as exc:
            raise TaskError(exc.message) from None
        ctx.log(
            f"reassign disk '{disk}' from VM '{vm.vmid}' as '{plan.target_disk}' to VM '{target}'"
        )
        new = renamed(drive, vm, other)
        drop_from_boot(ctx, vm, disk)
        del vm.config[disk]
        ctx.log(f"removing disk '{disk}' from VM '{vm.vmid}' config")
        unused = plan.target_disk.startswith("unused")
        other.config[plan.target_disk] = volid(new) if unused else new
        cluster.usage.update(vm)
        cluster.usage.update(other)

    obj = f"{vm.vmid}-{disk}>{target}-{plan.target_disk}"
    worker = locked_worker(cluster, vm.vmid, "qmmove", both_locked(cluster, target, body))
    return await cluster.tasks.spawn(vm.node, "qmmove", obj, task_user(req.principal), worker)


def both_locked(cluster: Cluster, vmid: int, body: Body) -> Body:
    """Run `body` holding the target VM's flock too (lock_config nested)."""

    async def run(ctx: TaskContext) -> None:
        lock = cluster.flock(vmid)
        await lock.acquire(cluster.scaled(10.0))
        try:
            await body(ctx)
        finally:
            await lock.release()

    return run
