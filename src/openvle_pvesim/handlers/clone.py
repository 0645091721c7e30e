"""POST /nodes/{node}/qemu/{vmid}/clone: PVE's synchronous checks, then the `qmclone` worker.

The worker takes a shared flock on a stopped source (exclusive on a running one) and an
exclusive one on the new id (1 s wait each; held for the whole clone), re-checks that the
id is free (the nextid race), writes the new config with `lock: clone`, clones each volume
(full clones to a non-shared storage queue on its storage lock), unlocks, and adds the VM
to the pool last.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from openvle_pvesim.cluster import VM, Cluster
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError, param_error
from openvle_pvesim.handlers.common import check_lock, req_vm, task_user
from openvle_pvesim.tasks import TaskContext, TaskError
from openvle_pvesim.vmconfig import (
    NET_RE,
    check_name,
    format_gib,
    net_bridge,
    parse_size,
    smbios_with_uuid,
    storage_of,
    volid,
    volume_keys,
    with_new_mac,
)
from openvle_pvesim.vmops import check_unlocked, fault_check

STARTUP_SECONDS = 0.3  # fork and early checks before the flocks; the temp config follows at once
LINKED_SECONDS = 0.5
ALLOC_SECONDS = 3.0
STORAGE_LOCK_WAIT = 10.0
CLONE_LOCK_WAIT = 1.0
THROUGHPUT = {"rbd": 0.5 * 1024**3, "lvmthin": 0.35 * 1024**3}  # bytes per second


@dataclass
class ClonePlan:
    """What a clone will do, fixed by the synchronous part."""

    source: VM
    newid: int
    node: str
    full: bool
    storage: str | None
    pool: str | None
    name: str | None
    description: str | None


def check_request(req: Request, source: VM) -> ClonePlan:
    """The checks PVE runs before the UPID exists (500/403), in its order."""
    cluster, params = req.cluster, req.params
    pool = params.get("pool")
    if pool is not None and pool not in cluster.pools:
        raise PVEError(403, f"Permission check failed (pool '{pool}' does not exist)")
    target = str(params.get("target") or source.node)
    cluster.node(target)
    storage = params.get("storage")
    full = bool(params.get("full", not source.is_template))
    if storage is not None:
        if storage not in cluster.storages:
            raise PVEError(500, f"storage '{storage}' does not exist")
        if not full:
            raise PVEError(500, "parameter 'storage' not allowed for linked clones")
        if target != source.node and not cluster.storages[str(storage)].shared:
            raise PVEError(500, f"can't clone to non-shared storage '{storage}'")
    if not full and params.get("format"):
        raise PVEError(500, "parameter 'format' not allowed for linked clones")
    check_lock(source)
    if params.get("snapname"):
        raise PVEError(500, f"snapshot '{params['snapname']}' does not exist")
    if "name" in params:
        check_name(str(params["name"]))
    plan = ClonePlan(
        source,
        int(params["newid"]),
        target,
        full,
        storage and str(storage),
        pool and str(pool),
        params.get("name"),
        params.get("description"),
    )
    check_volumes(cluster, plan)
    existing = cluster.vms.get(plan.newid)
    if existing is not None and existing.node == source.node:
        raise PVEError(500, f"unable to create VM {plan.newid}: config file already exists")
    check_access(req, plan)
    return plan


def check_volumes(cluster: Cluster, plan: ClonePlan) -> None:
    """Linked clones need base volumes; another node needs shared storage."""
    src = plan.source
    for key in volume_keys(src.config):
        value = str(src.config[key])
        if not plan.full and "cloudinit" not in value and "base-" not in volid(value).split(":")[1]:
            raise PVEError(
                500, f"Linked clone feature is not supported for '{volid(value)}' ({key})"
            )
        sid = plan.storage or storage_of(value)
        if plan.node != src.node and not cluster.is_shared(f"{sid}:x"):
            raise PVEError(500, f"can't clone VM to node '{plan.node}' (VM uses local storage)")


def check_access(req: Request, plan: ClonePlan) -> None:
    """Datastore.AllocateSpace on each target storage, SDN.Use on each bridge."""
    config = plan.source.config
    for sid in sorted({plan.storage or storage_of(str(config[k])) for k in volume_keys(config)}):
        req.principal.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    for key in sorted(k for k in config if NET_RE.match(k)):
        bridge, tag = net_bridge(str(config[key]))
        zone = f"/sdn/zones/localnetwork/{bridge}" + (f"/{tag}" if tag else "")
        req.principal.check(zone, ["SDN.Use"])


def new_config(cluster: Cluster, plan: ClonePlan) -> dict[str, Any]:
    """Source config minus volumes and `template`, with new MACs, smbios uuid, vmgenid."""
    src = plan.source.config
    volumes = set(volume_keys(src))
    config = {k: v for k, v in src.items() if k not in volumes and k not in ("template", "lock")}
    config["name"] = plan.name or f"Copy-of-VM-{plan.source.name}"
    if plan.description is not None:
        config["description"] = plan.description
    for key in [k for k in config if NET_RE.match(k)]:
        config[key] = with_new_mac(str(config[key]), cluster.new_mac())
    config["smbios1"] = smbios_with_uuid(src.get("smbios1"), str(uuid.uuid4()))
    if "vmgenid" in src:
        config["vmgenid"] = str(uuid.uuid4())
    config["lock"] = "clone"
    return config


async def clone_volume(
    cluster: Cluster, ctx: TaskContext, plan: ClonePlan, key: str, n: int
) -> str:
    """Clone one drive and return its new drive string, logging as PVE does."""
    value = str(plan.source.config[key])
    source_vol, opts = volid(value), value[len(volid(value)) :]
    sid = plan.storage or storage_of(value)
    if "cloudinit" in value:
        ctx.log(f"create full clone of drive {key} ({source_vol})")
        return f"{sid}:vm-{plan.newid}-cloudinit{opts}"
    if not plan.full:
        ctx.log(f"create linked clone of drive {key} ({source_vol})")
        await ctx.sleep(LINKED_SECONDS)
        return f"{source_vol}/vm-{plan.newid}-disk-{n}{opts}"
    ctx.log(f"create full clone of drive {key} ({source_vol})")
    new_vol = f"{sid}:vm-{plan.newid}-disk-{n}"
    await allocate(cluster, ctx, sid, plan.node)
    ctx.log(f"allocated target volume '{new_vol}'")
    await copy_volume(cluster, ctx, sid, parse_size(value))
    return f"{new_vol}{opts}"


async def allocate(cluster: Cluster, ctx: TaskContext, sid: str, node: str) -> None:
    """Non-shared storages serialise allocations on a node-local lock (10 s wait)."""
    storage = cluster.storages.get(sid)
    if storage is None or storage.shared:
        return
    lock = cluster.storage_lock(sid, node)
    await lock.acquire(cluster.scaled(STORAGE_LOCK_WAIT))
    try:
        await ctx.sleep(ALLOC_SECONDS)
    finally:
        await lock.release()


async def copy_volume(cluster: Cluster, ctx: TaskContext, sid: str, size: int) -> None:
    """qemu-img convert: `transferred X of Y (p%)` lines, time by size and throughput."""
    storage = cluster.storages.get(sid)
    rate = THROUGHPUT.get(storage.plugintype if storage else "", 0.25 * 1024**3)
    steps = 10
    for step in range(1, steps + 1):
        await ctx.sleep(size / rate / steps)
        done = size * step // steps
        ctx.log(f"transferred {format_gib(done)} of {format_gib(size)} ({done * 100 / size:.2f}%)")


async def run_clone(cluster: Cluster, ctx: TaskContext, plan: ClonePlan) -> None:
    """The worker body once both flocks are held: re-check, then clone or clean up."""
    newid = plan.newid
    check_unlocked(plan.source)
    if newid in cluster.contested_ids:
        cluster.contested_ids.discard(newid)
        take_by_other_client(cluster, plan)
    if newid in cluster.vms:
        raise TaskError(f"unable to create VM {newid}: config file already exists")
    vm = VM(newid, plan.node, new_config(cluster, plan))
    cluster.vms[newid] = vm
    try:
        for n, key in enumerate(volume_keys(plan.source.config)):
            vm.config[key] = await clone_volume(cluster, ctx, plan, key, n)
        cluster.usage.update(vm)  # a full clone's volumes take their space now
        vm.config.pop("lock", None)
        if plan.pool is not None:
            if plan.pool not in cluster.pools:
                raise TaskError(f"can't add VM {newid} to pool '{plan.pool}'")
            cluster.set_pool(newid, plan.pool)
    except TaskError as exc:
        cluster.vms.pop(newid, None)
        raise TaskError(f"clone failed: {exc}") from None
    except BaseException:
        cluster.vms.pop(newid, None)
        raise


def take_by_other_client(cluster: Cluster, plan: ClonePlan) -> None:
    """The nextid race: another client's clone grabbed the id a moment earlier."""
    other = "Other-Team" if "Other-Team" in cluster.pools else None
    config = {"name": f"other-client-{plan.newid}", "memory": "1024", "cores": 1}
    cluster.vms[plan.newid] = VM(plan.newid, plan.node, config)
    cluster.set_pool(plan.newid, other)


@route("POST", "/nodes/{node}/qemu/{vmid}/clone")
async def clone(req: Request) -> str:
    cluster = req.cluster
    source = req_vm(req)
    if "newid" not in req.params:
        raise param_error(newid="property is missing and it is not optional")
    plan = check_request(req, source)

    async def worker(ctx: TaskContext) -> None:
        fault_check(cluster, "qmclone", source.vmid)
        await ctx.sleep(STARTUP_SECONDS)
        shared = not source.running
        src_lock, new_lock = cluster.flock(source.vmid), cluster.flock(plan.newid)
        await src_lock.acquire(cluster.scaled(CLONE_LOCK_WAIT), shared=shared)
        try:
            await new_lock.acquire(cluster.scaled(CLONE_LOCK_WAIT))
            try:
                await run_clone(cluster, ctx, plan)
            finally:
                await new_lock.release()
        finally:
            await src_lock.release(shared=shared)

    user = task_user(req.principal)
    return await cluster.tasks.spawn(source.node, "qmclone", str(source.vmid), user, worker)
