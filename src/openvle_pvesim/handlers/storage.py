"""GET /storage, GET /nodes/{node}/storage/{storage}/content and GET /nodes/{node}/network.

/storage lists the definitions the caller may audit or allocate on (pve-storage
API2/Storage/Config.pm); content lists the VM volumes on a storage as
API2/Storage/Content.pm does (`volid`, `format`, `size`, `vmid`, `content`, linked
clones with `parent`), a node's local storage only for VMs on that node. The network
is each node's `vmbr0` bridge on `eno1` (pve-manager API2/Network.pm items).
"""

from __future__ import annotations

from typing import Any

from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError
from openvle_pvesim.resources import may_see_storage
from openvle_pvesim.vmconfig import parse_size, storage_of, volid, volume_keys


@route("GET", "/storage")
async def list_storage(req: Request) -> list[dict[str, Any]]:
    kind = req.params.get("type")
    out = []
    for s in req.cluster.storages.values():
        if (kind is None or s.plugintype == kind) and may_see_storage(req.principal, s.sid):
            item: dict[str, Any] = {"storage": s.sid, "type": s.plugintype, "content": s.content}
            item["digest"] = "0" * 40
            if s.shared:
                item["shared"] = 1
            if s.plugintype == "lvmthin":
                item.update(thinpool="data", vgname="pve")
            if s.plugintype == "rbd":
                item.update(pool="vm-pool", krbd=0)
            out.append(item)
    return out


@route("GET", "/nodes/{node}/storage/{storage}/content")
async def storage_content(req: Request) -> list[dict[str, Any]]:
    cluster = req.cluster
    node = cluster.node(str(req.params["node"])).name
    sid = str(req.params["storage"])
    storage = cluster.storages.get(sid)
    if storage is None:
        raise PVEError(500, f"storage '{sid}' does not exist")
    wanted = req.params.get("vmid")
    content = req.params.get("content")
    if content is not None and content not in ("images", "rootdir"):
        return []
    out = []
    for vm in cluster.vms.values():
        if (wanted is not None and vm.vmid != wanted) or (not storage.shared and vm.node != node):
            continue
        for key in volume_keys(vm.config):
            value = str(vm.config[key])
            if storage_of(value) == sid:
                out.append(volume_item(volid(value), parse_size(value), vm.vmid))
        for key, value in vm.config.items():
            if key.startswith("unused") and storage_of(str(value)) == sid:
                out.append(volume_item(str(value), 0, vm.vmid))
    return sorted(out, key=lambda item: str(item["volid"]))


def volume_item(vol: str, size: int, vmid: int) -> dict[str, Any]:
    item: dict[str, Any] = {"volid": vol, "format": "raw", "size": size, "vmid": vmid}
    item["content"] = "images"
    name = vol.split(":", 1)[1]
    if "/" in name:
        item["parent"] = name.split("/", 1)[0]
    return item


@route("GET", "/nodes/{node}/network")
async def network(req: Request) -> list[dict[str, Any]]:
    node = req.cluster.node(str(req.params["node"]))
    kind = req.params.get("type")
    bridge: dict[str, Any] = {
        "iface": "vmbr0",
        "type": "bridge",
        "method": "static",
        "method6": "manual",
        "families": ["inet"],
        "active": 1,
        "autostart": 1,
        "bridge_ports": "eno1",
        "bridge_stp": "off",
        "bridge_fd": "0",
        "address": node.ip,
        "netmask": "24",
        "cidr": f"{node.ip}/24",
        "gateway": node.ip.rsplit(".", 1)[0] + ".1",
        "priority": 4,
    }
    nic: dict[str, Any] = {
        "iface": "eno1",
        "type": "eth",
        "method": "manual",
        "method6": "manual",
        "families": ["inet"],
        "active": 1,
        "exists": 1,
        "priority": 3,
    }
    wanted = {"bridge": "bridge", "any_bridge": "bridge", "eth": "eth"}
    return [i for i in (nic, bridge) if kind is None or wanted.get(str(kind)) == i["type"]]
