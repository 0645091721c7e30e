"""Fault `vmid_takeover`: another client takes vmid N (see faults.py for the grammar).

Right before the simulator answers a GET of VM N's config or status, the rule may fire:
an admin removes VM N by hand (HA resource, stop, destroy with purge) and a colleague
creates a new VM that /cluster/nextid handed the same id (in the same pool, on the same
node; Proxmox gives it a new vmgenid, smbios1 uuid, MAC and `meta` ctime, and it carries
no SMBIOS serial) and starts it. The request is then answered about the new VM, as a
client whose last look was a moment earlier would experience it.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from openvle_pvesim.agent import dhcp_address
from openvle_pvesim.cluster import Cluster
from openvle_pvesim.faults import FaultInjector
from openvle_pvesim.handlers.qemu import remove_vm
from openvle_pvesim.model import VM

TAKEOVER_PATHS = frozenset(
    {"/nodes/{node}/qemu/{vmid}/config", "/nodes/{node}/qemu/{vmid}/status/current"}
)
TAKEOVER_NAME = "teacher-golden-image-{vmid}"


def take_vmid(
    cluster: Cluster, faults: FaultInjector, method: str, template: str, params: Any
) -> int | None:
    """`vmid_takeover`: before a GET of VM N's config or status, maybe another client
    takes vmid N (see the module docstring). Returns N when it did."""
    if method != "GET" or template not in TAKEOVER_PATHS:
        return None
    vmid = int(params["vmid"])
    victim = cluster.vms.get(vmid)
    if victim is None or victim.is_template or victim.config.get("lock"):
        return None
    if vmid in faults.takeovers:  # taken once: the new VM is the one to keep an eye on
        return None
    pool = cluster.pool_of(vmid)
    message = faults.take("vmid_takeover", str(vmid))
    if message is None:
        return None
    name = (message or TAKEOVER_NAME).format(name=victim.name, vmid=vmid)
    config = _replace(cluster, vmid, victim.node, pool, name)
    faults.takeovers[vmid] = copy.deepcopy(config)
    return vmid


def _replace(cluster: Cluster, vmid: int, node: str, pool: str | None, name: str) -> dict[str, Any]:
    """VM `vmid` destroyed with purge; a new, running one created in its place."""
    remove_vm(cluster, vmid, purge=True)
    config: dict[str, Any] = {
        "name": name,
        "memory": "1024",
        "cores": 1,
        "ostype": "l26",
        "net0": f"virtio={cluster.new_mac()},bridge=vmbr0",
        "smbios1": f"uuid={uuid.uuid4()}",
        "vmgenid": str(uuid.uuid4()),
        "meta": f"creation-qemu=9.2.0,ctime={int(time.time())}",
    }
    vm = VM(vmid, node, config, running=True, started_at=time.time())
    cluster.vms[vmid] = vm
    vm.dhcp_ip = dhcp_address(cluster, vm)
    cluster.set_pool(vmid, pool)
    return config
