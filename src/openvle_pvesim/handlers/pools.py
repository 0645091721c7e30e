"""Pools: GET/PUT/POST/DELETE /pools (?poolid=, 8.1+) and the deprecated /pools/{poolid}."""

from __future__ import annotations

import re
from typing import Any

from openvle_pvesim.cluster import Cluster, Pool
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError, param_error
from openvle_pvesim.resources import storage_on

POOLID_RE = re.compile(r"^[A-Za-z0-9.\-_]+(/[A-Za-z0-9.\-_]+){0,2}$")


def get_pool(cluster: Cluster, poolid: str) -> Pool:
    if poolid not in cluster.pools:
        raise PVEError(500, f"pool '{poolid}' does not exist")
    return cluster.pools[poolid]


def members(req: Request, pool: Pool, kind: str | None) -> list[dict[str, Any]]:
    """VM members as /cluster/resources entries (lagged), storage members per node."""
    cluster = req.cluster
    out: list[dict[str, Any]] = []
    if kind in (None, "qemu"):
        for vmid in sorted(pool.vms):
            vm = cluster.vms.get(vmid)
            if vm is not None:
                out.append(cluster.vm_resource(vm, False))  # members carry no `pool`
    if kind in (None, "storage"):
        for sid in sorted(pool.storage):
            out.extend(storage_on(cluster, cluster.storages[sid], n) for n in cluster.nodes)
    return out


def pool_item(req: Request, pool: Pool, kind: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"poolid": pool.poolid, "members": members(req, pool, kind)}
    if pool.comment:
        item["comment"] = pool.comment
    return item


@route("GET", "/pools")
async def list_pools(req: Request) -> list[dict[str, Any]]:
    """All auditable pools, or (with `poolid`) one pool with its members."""
    cluster = req.cluster
    poolid = req.params.get("poolid")
    kind = req.params.get("type")
    if poolid is not None:
        req.principal.check(f"/pool/{poolid}", ["Pool.Audit"])
        return [pool_item(req, get_pool(cluster, str(poolid)), kind and str(kind))]
    out = []
    for pool in cluster.pools.values():
        if req.principal.has(f"/pool/{pool.poolid}", "Pool.Audit"):
            entry: dict[str, Any] = {"poolid": pool.poolid}
            if pool.comment:
                entry["comment"] = pool.comment
            out.append(entry)
    return out


@route("GET", "/pools/{poolid}")
async def read_pool(req: Request) -> dict[str, Any]:
    pool = get_pool(req.cluster, str(req.params["poolid"]))
    kind = req.params.get("type")
    item = pool_item(req, pool, kind and str(kind))
    del item["poolid"]
    return item


@route("POST", "/pools")
async def create_pool(req: Request) -> None:
    poolid = str(req.params["poolid"])
    if not POOLID_RE.match(poolid):
        raise param_error(poolid="invalid format - invalid pool ID")
    if poolid in req.cluster.pools:
        raise PVEError(500, f"create pool failed: pool '{poolid}' already exists")
    req.cluster.pools[poolid] = Pool(poolid, str(req.params.get("comment", "")))


def update(req: Request, poolid: str) -> None:
    """PUT semantics shared by /pools and /pools/{poolid}; errors are wrapped."""
    cluster = req.cluster
    pool = get_pool(cluster, poolid)
    vmids = [int(v) for v in re.split(r"[,;\s]+", str(req.params.get("vms", ""))) if v]
    storages = [s for s in re.split(r"[,;\s]+", str(req.params.get("storage", ""))) if s]
    remove = bool(req.params.get("delete"))
    try:
        for vmid in vmids:
            req.principal.check(f"/vms/{vmid}", ["Permissions.Modify", "VM.Allocate"], any_=True)
            change_vm(cluster, pool, vmid, remove, bool(req.params.get("allow-move")))
        for sid in storages:
            if sid not in cluster.storages:
                raise PVEError(500, f"no such storage '{sid}'")
            (pool.storage.discard if remove else pool.storage.add)(sid)
    except PVEError as exc:
        if exc.status == 403:
            raise
        raise PVEError(500, f"update pools failed: {exc.message}") from None
    if "comment" in req.params:
        pool.comment = str(req.params["comment"])


def change_vm(cluster: Cluster, pool: Pool, vmid: int, remove: bool, allow_move: bool) -> None:
    if remove:
        if vmid not in pool.vms:
            raise PVEError(500, f"VM {vmid} is not a pool member")
        cluster.set_pool(vmid, None)
        return
    if vmid not in cluster.vms:
        raise PVEError(500, f"no such VM ID '{vmid}'")
    current = cluster.pool_of(vmid)
    if current == pool.poolid:
        raise PVEError(500, f"VM {vmid} is already a pool member")
    if current is not None and not allow_move:
        raise PVEError(
            500, f"VM {vmid} belongs already to pool '{current}' and 'allow-move' is not set"
        )
    cluster.set_pool(vmid, pool.poolid)


@route("PUT", "/pools")
async def put_pools(req: Request) -> None:
    update(req, str(req.params["poolid"]))


@route("PUT", "/pools/{poolid}")
async def put_pool(req: Request) -> None:
    update(req, str(req.params["poolid"]))


def delete(req: Request, poolid: str) -> None:
    pool = get_pool(req.cluster, poolid)
    if pool.vms:
        raise PVEError(500, f"pool '{poolid}' is not empty (contains VM {min(pool.vms)})")
    if pool.storage:
        raise PVEError(500, f"pool '{poolid}' is not empty (contains storage {min(pool.storage)})")
    del req.cluster.pools[poolid]


@route("DELETE", "/pools")
async def delete_pools(req: Request) -> None:
    delete(req, str(req.params["poolid"]))


@route("DELETE", "/pools/{poolid}")
async def delete_pool(req: Request) -> None:
    delete(req, str(req.params["poolid"]))
