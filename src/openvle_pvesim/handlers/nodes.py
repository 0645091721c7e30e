"""/nodes, /nodes/{node}/status, /nodes/{node}/storage and the VM list of a node."""

from __future__ import annotations

import time
from typing import Any

from openvle_pvesim.cluster import PVE_VERSIONS
from openvle_pvesim.contract import Request, route
from openvle_pvesim.livestats import vmstatus
from openvle_pvesim.resources import may_see_storage, nodes_list_item


@route("GET", "/nodes")
async def nodes(req: Request) -> list[dict[str, Any]]:
    has = req.principal.has
    return [
        nodes_list_item(n, has(f"/nodes/{n.name}", "Sys.Audit")) for n in req.cluster.nodes.values()
    ]


@route("GET", "/nodes/{node}/status")
async def node_status(req: Request) -> dict[str, Any]:
    node = req.cluster.node(str(req.params["node"]))
    mem = req.cluster.node_used(node.name)  # live, as /proc/meminfo
    load = node.cpu * node.maxcpu
    full, _release, repoid = PVE_VERSIONS[req.cluster.version]
    kernel = "6.14.11-4-pve" if req.cluster.version == "9.1" else "6.8.12-9-pve"
    return {
        "cpu": node.cpu,
        "loadavg": [f"{load:.2f}", f"{load * 0.9:.2f}", f"{load * 0.8:.2f}"],
        "memory": {
            "total": node.maxmem,
            "used": mem,
            "free": node.maxmem - mem,
            "available": node.maxmem - mem,
        },
        "rootfs": {
            "total": node.maxdisk,
            "used": node.disk,
            "free": node.maxdisk - node.disk,
            "avail": node.maxdisk - node.disk,
        },
        "cpuinfo": {
            "cores": node.maxcpu // 2,
            "cpus": node.maxcpu,
            "sockets": 1,
            "model": "AMD EPYC 7313P 16-Core Processor",
        },
        "pveversion": f"pve-manager/{full}/{repoid}",  # Nodes.pm: version and repoid
        "current-kernel": {
            "sysname": "Linux",
            "release": kernel,
            "machine": "x86_64",
            "version": "#1 SMP PREEMPT_DYNAMIC PMX (2025-06-01T12:00Z)",
        },
        "boot-info": {"mode": "efi", "secureboot": 0},
        "uptime": int(time.time() - node.boot_time),
    }


@route("GET", "/nodes/{node}/storage")
async def node_storage(req: Request) -> list[dict[str, Any]]:
    """Storages of a node the caller may audit or allocate on."""
    cluster = req.cluster
    name = cluster.node(str(req.params["node"])).name
    wanted = req.params.get("storage")
    content = req.params.get("content")
    out = []
    for s in cluster.storages.values():
        if wanted is not None and s.sid != wanted:
            continue
        if content is not None and str(content) not in s.content.split(","):
            continue
        if not may_see_storage(req.principal, s.sid):
            continue
        used = cluster.usage.used(s.sid, name)  # live, as the storage plugin reports it
        out.append(
            {
                "storage": s.sid,
                "type": s.plugintype,
                "content": s.content,
                "shared": int(s.shared),
                "active": 1,
                "enabled": 1,
                "total": s.total,
                "used": used,
                "avail": s.total - used,
                "used_fraction": used / s.total if s.total else 0.0,
            }
        )
    return out


@route("GET", "/nodes/{node}/qemu")
async def node_vms(req: Request) -> list[dict[str, Any]]:
    """API2/Qemu.pm `vmlist`: the live `vmstatus` (full: with the QMP part) of the node's
    VMs the caller may audit."""
    cluster = req.cluster
    name = cluster.node(str(req.params["node"])).name
    full = bool(req.params.get("full"))
    now = time.time()
    has = req.principal.has
    return [
        vmstatus(cluster, vm, full, now)
        for vm in cluster.vms.values()
        if vm.node == name and has(f"/vms/{vm.vmid}", "VM.Audit")
    ]
