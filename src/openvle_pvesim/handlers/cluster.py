"""/version and the /cluster endpoints (resources, nextid, status, tasks)."""

from __future__ import annotations

from typing import Any

from openvle_pvesim.cluster import PVE_VERSIONS
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError, param_error


@route("GET", "/version")
async def version(req: Request) -> dict[str, Any]:
    full, release, repoid = PVE_VERSIONS[req.cluster.version]
    return {"version": full, "release": release, "repoid": repoid}


@route("GET", "/cluster/resources")
async def resources(req: Request) -> list[dict[str, Any]]:
    kind = req.params.get("type")
    return req.cluster.resources(req.principal, None if kind is None else str(kind))


@route("GET", "/cluster/nextid")
async def nextid(req: Request) -> str:
    """The lowest free id as a string; reserves nothing (and may be contested by a fault)."""
    cluster = req.cluster
    wanted = req.params.get("vmid")
    if wanted is not None:
        if int(wanted) in cluster.vms:
            raise param_error(vmid=f"VM {wanted} already exists")
        return str(wanted)
    vmid = cluster.nextid()
    if vmid >= 1_000_000:
        raise PVEError(500, "unable to get any free VMID in range [100, 999999]")
    if cluster.faults.take("nextid_collision", "") is not None:
        cluster.contested_ids.add(vmid)
    return str(vmid)


@route("GET", "/cluster/status")
async def status(req: Request) -> list[dict[str, Any]]:
    cluster = req.cluster
    nodes = list(cluster.nodes.values())
    out: list[dict[str, Any]] = [
        {
            "id": "cluster",
            "type": "cluster",
            "name": "openvle-sim",
            "nodes": len(nodes),
            "quorate": 1,
            "version": len(nodes) + 2,
        }
    ]
    for n in nodes:
        out.append(
            {
                "id": f"node/{n.name}",
                "type": "node",
                "name": n.name,
                "nodeid": n.nodeid,
                "ip": n.ip,
                "online": 1 if n.online else 0,
                "local": 1 if n.nodeid == 1 else 0,
                "level": "",
            }
        )
    return out


@route("GET", "/cluster/tasks")
async def cluster_tasks(req: Request) -> list[dict[str, Any]]:
    """Recent tasks cluster-wide, newest first (pve-manager Cluster.pm `tasks`).

    Sys.Audit on `/` shows every task; otherwise only tasks whose split `user` is the
    caller's id, so a token without it sees none (its tasks' user is its user).
    """
    principal = req.principal
    see_all = principal.has("/", "Sys.Audit")
    me = principal.name
    visible = [t for t in req.cluster.tasks.tasks.values() if see_all or t.owner()[0] == me]
    visible.sort(key=lambda t: t.starttime, reverse=True)
    return [t.list_item() for t in visible[:1000]]
