"""Choose the node of a new clone from live Proxmox figures and our in-flight clones."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Node, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.placement.nodes import NodeLoad, choose_node
from openvle_core.proxmox.models import VmConfig

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

DISK_KEY = re.compile(r"^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$")
INFLIGHT = (VmStatus.CLONING.value, VmStatus.STARTING.value)


def storages_of(config: VmConfig) -> set[str]:
    """Storage ids of the disks a clone copies (CD-ROM images excluded, cloud-init kept)."""
    found: set[str] = set()
    for key, value in {**(config.model_extra or {})}.items():
        text = str(value)
        if not DISK_KEY.match(key) or text == "none" or ":" not in text:
            continue
        if "media=cdrom" in text and "cloudinit" not in text:
            continue
        found.add(text.split(":", 1)[0])
    return found


async def on_shared_storage(runtime: Runtime, config: VmConfig) -> bool:
    """True when every disk of the template is on shared storage (unknown = local)."""
    sids = storages_of(config)
    resources = await runtime.proxmox.cluster_resources("storage")
    shared = {r.storage for r in resources if r.storage and r.shared}
    return bool(sids) and sids <= shared


async def inflight_cores(runtime: Runtime, exclude_vm: str) -> dict[str, float]:
    """Cores of our clones still cloning/starting per node (not yet in PVE's stats)."""
    cores = func.coalesce(Template.cores, 1)
    stmt = (
        select(Vm.node, func.sum(cores))
        .outerjoin(Template, Template.id == Vm.template_id)
        .where(Vm.status.in_(INFLIGHT), Vm.node.is_not(None), Vm.id != exclude_vm)
        .group_by(Vm.node)
    )
    async with transaction(runtime.sessions) as session:
        rows = (await session.execute(stmt)).all()
        known = {n.name: n.cpu for n in (await session.scalars(select(Node))).all()}
    for name, cpu in known.items():
        if cpu > 0:
            runtime.node_cpu.setdefault(name, cpu)
    return {str(node): float(total or 0) for node, total in rows}


async def place_clone(runtime: Runtime, vm_id: str, template_node: str, config: VmConfig) -> str:
    """The node for a new clone: least loaded (shared storage) or the template's node."""
    if not await on_shared_storage(runtime, config):
        return template_node
    nodes = [
        NodeLoad(n.node, n.status == "online", float(n.cpu or 0.0), int(n.maxcpu or 0))
        for n in await runtime.proxmox.nodes()
    ]
    inflight = await inflight_cores(runtime, vm_id)
    chosen = choose_node(nodes, inflight_cores=inflight, previous=runtime.node_cpu)
    for n in nodes:
        if n.cpu > 0:
            runtime.node_cpu[n.name] = n.cpu
    return chosen
