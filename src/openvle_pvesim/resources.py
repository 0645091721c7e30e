"""Non-VM entries of /cluster/resources (node, storage, pool, sdn) and node summaries."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openvle_pvesim.access import Principal
    from openvle_pvesim.model import ClusterState, Node, Storage


def node_entry(node: Node) -> dict[str, Any]:
    """A node item as /cluster/resources has it."""
    return {
        "id": f"node/{node.name}",
        "node": node.name,
        "type": "node",
        "status": "online" if node.online else "offline",
        "level": "",
        "uptime": int(time.time() - node.boot_time),
        "cpu": node.cpu,
        "maxcpu": node.maxcpu,
        "mem": node.mem or node.mem_base,
        "maxmem": node.maxmem,
        "disk": node.disk,
        "maxdisk": node.maxdisk,
        "cgroup-mode": 2,
        "hastate": "online",
    }


def node_entries(cluster: ClusterState, principal: Principal) -> list[dict[str, Any]]:
    return [
        node_entry(n)
        for n in cluster.nodes.values()
        if principal.has(f"/nodes/{n.name}", "Sys.Audit")
    ]


def storage_on(cluster: ClusterState, storage: Storage, node: str) -> dict[str, Any]:
    """A storage item as /cluster/resources has it, for one node."""
    used = storage.used.get("" if storage.shared else node, 0)
    return {
        "id": f"storage/{node}/{storage.sid}",
        "storage": storage.sid,
        "node": node,
        "type": "storage",
        "plugintype": storage.plugintype,
        "status": "available",
        "shared": 1 if storage.shared else 0,
        "content": storage.content,
        "disk": used,
        "maxdisk": storage.total,
    }


def may_see_storage(principal: Principal, sid: str) -> bool:
    path = f"/storage/{sid}"
    return principal.has(path, "Datastore.Audit") or principal.has(path, "Datastore.AllocateSpace")


def storage_entries(cluster: ClusterState, principal: Principal) -> list[dict[str, Any]]:
    return [
        storage_on(cluster, s, n)
        for n in cluster.nodes
        for s in cluster.storages.values()
        if may_see_storage(principal, s.sid)
    ]


def pool_entries(cluster: ClusterState, principal: Principal) -> list[dict[str, Any]]:
    """Pool items: cpu/mem aggregated over running members (from the lagged stats)."""
    out = []
    for pool in cluster.pools.values():
        if not principal.has(f"/pool/{pool.poolid}", "Pool.Audit"):
            continue
        entry: dict[str, Any] = {
            "id": f"/pool/{pool.poolid}",
            "pool": pool.poolid,
            "type": "pool",
            "cpu": 0.0,
            "maxcpu": 0,
            "mem": 0,
            "maxmem": 0,
            "uptime": 0,
        }
        for vmid in pool.vms:
            vm = cluster.vms.get(vmid)
            stats = vm.entry if vm is not None else None
            if stats is not None and stats["status"] == "running":
                for key in ("cpu", "maxcpu", "mem", "maxmem"):
                    entry[key] += stats[key]
                entry["uptime"] = max(entry["uptime"], stats["uptime"])
        out.append(entry)
    return out


def sdn_entries(cluster: ClusterState, principal: Principal) -> list[dict[str, Any]]:
    """The default `localnetwork` zone on each node."""
    if not principal.has("/sdn/zones/localnetwork", "SDN.Audit"):
        return []
    out = []
    for n in cluster.nodes:
        entry: dict[str, Any] = {
            "id": f"sdn/{n}/localnetwork",
            "sdn": "localnetwork",
            "node": n,
            "type": "sdn",
            "status": "ok",
        }
        if cluster.version != "8.4":
            entry["zone-type"] = "localnetwork"
        out.append(entry)
    return out


def other_entries(
    cluster: ClusterState, principal: Principal, kind: str | None
) -> list[dict[str, Any]]:
    """Storage, sdn and (unfiltered only) pool entries."""
    out: list[dict[str, Any]] = []
    if kind in (None, "storage"):
        out.extend(storage_entries(cluster, principal))
    if kind in (None, "sdn"):
        out.extend(sdn_entries(cluster, principal))
    if kind is None:
        out.extend(pool_entries(cluster, principal))
    return out


def nodes_list_item(node: Node, stats: bool) -> dict[str, Any]:
    """An item of GET /nodes, as pve-manager API2Tools.pm `extract_node_stats` builds it
    (`id`, `type`, `disk`, `maxdisk` included); without Sys.Audit on the node (`stats`
    False) only its identity, status and level (API2/Nodes.pm `index`)."""
    item: dict[str, Any] = {
        "id": f"node/{node.name}",
        "node": node.name,
        "type": "node",
        "status": "online" if node.online else "offline",
        "level": "",
        "ssl_fingerprint": ":".join(f"{(i * 37 + node.nodeid) % 256:02X}" for i in range(32)),
    }
    if stats and node.online:
        item.update(
            uptime=int(time.time() - node.boot_time),
            cpu=node.cpu,
            mem=node.mem or node.mem_base,
            disk=node.disk,
        )
    if stats:
        item.update(maxcpu=node.maxcpu, maxmem=node.maxmem, maxdisk=node.maxdisk)
    return item
