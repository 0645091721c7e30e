"""A template becomes a VM in our pool, configured, maybe started (`vm.clone`, and each VM
of an event's deploy).

Steps, each checked against Proxmox and recorded before the next: cloud-init address
(first, so an exhausted network fails before anything is cloned), node placement, the
clone itself (`guests.cloning.clone_guest`, which records the new guest's identity
evidence on the row before anything else is done to it), the one config update (on the
config confirmed as ours), the final status, the start. Placement: the template's node
for local disks, else the online node with the most free CPU (`placement.nodes`),
counting our clones not yet in Proxmox's figures. Inside an event operation the clone
first waits for its node and storage slots (`runtime.caps`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.db.enums import GuestIdentity, VmStatus
from openvle_core.db.models import Operation, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.guests import vmids
from openvle_core.guests.cloning import CloneSpec, clone_guest
from openvle_core.guests.errors import IdentityMismatch
from openvle_core.guests.identity import Evidence, claim_of, pool_node, require_pool_node
from openvle_core.nodes.repository import NodeRepository
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.placement.caps import Limits, TemplateDisks, storages_of
from openvle_core.placement.nodes import NodeLoad, choose_node
from openvle_core.proxmox import ProxmoxClient
from openvle_core.proxmox.models import VmConfig
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.configure import allocate_address, configure_clone
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.power import db_status, power_vm
from openvle_core.vms.records import NO_EVIDENCE, load_vm, record_vmid, update_vm
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def _reserve_ip(runtime: Runtime, vm_id: str) -> None:
    """Cloud-init on: claim the VM's address before cloning (idempotent)."""
    if runtime.settings.cloudinit.enabled:
        address = await allocate_address(runtime, vm_id)
        await update_vm(runtime.sessions, vm_id, ipv4=str(address))


async def _clone(runtime: Runtime, op: Operation, vm_id: str) -> None:
    """Place and clone (skipped if an earlier run recorded it done)."""
    vm = await load_vm(runtime.sessions, vm_id)
    assert vm.template_id is not None
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).require(vm.template_id)
    template_node = await require_pool_node(runtime.proxmox, template.vmid)
    node = vm.node
    if node is None:
        config = await runtime.proxmox.vm_config(template_node, template.vmid)
        node = await place_clone(runtime, vm_id, template_node, config)
        await update_vm(runtime.sessions, vm_id, node=node)

    async def set_vmid(vmid: int | None) -> None:
        await record_vmid(runtime.sessions, vm_id, vmid)

    async def set_evidence(evidence: Evidence) -> None:
        await update_vm(runtime.sessions, vm_id, **evidence.columns())

    claim = claim_of(vm)
    spec = CloneSpec(
        source_vmid=template.vmid,
        name=vm.name,
        uuid=vm.id,
        full=vm.full_clone,
        target=node,
        vm_id=vm.id,
        vmid=vm.vmid,
        record_vmid=set_vmid,
        evidence=claim.evidence,
        legacy=claim.legacy,
        record_evidence=set_evidence,
    )
    await clone_guest(runtime, op, spec)
    await journal.write(runtime.sessions, op, Journal(cloned=True))


async def clone_failed(runtime: Runtime, op: Operation, exc: BaseException) -> None:
    """A clone that failed for good leaves the VM row in `error` (delete cleans it up);
    a vmid that holds nothing provably ours (no evidence recorded, or gone from the pool)
    is released. A refusal (`IdentityMismatch`) writes nothing: the row stays as it was."""
    if op.target_id is None or isinstance(exc, IdentityMismatch):
        return
    vm = await load_vm(runtime.sessions, op.target_id)
    provable = vm.identity in (GuestIdentity.OURS, GuestIdentity.LEGACY)
    if vm.vmid is not None and (not provable or await pool_node(runtime.proxmox, vm.vmid) is None):
        await vmids.release(runtime.sessions, vm.vmid)
        await update_vm(runtime.sessions, vm.id, vmid=None, **NO_EVIDENCE)
    await update_vm(runtime.sessions, vm.id, status=VmStatus.ERROR.value)


async def clone_vm(runtime: Runtime, op: Operation) -> None:
    """Operation kind `vm.clone` (target: the VM row made by `request_clone`)."""
    assert op.target_id is not None
    vm_id = op.target_id
    await _reserve_ip(runtime, vm_id)
    if not journal.read(op).cloned:
        await _clone(runtime, op, vm_id)
    vm = await load_vm(runtime.sessions, vm_id)
    assert vm.vmid is not None
    node = await require_pool_node(runtime.proxmox, vm.vmid)
    status = db_status(await runtime.proxmox.vm_status(node, vm.vmid))
    if not journal.read(op).configured:
        await configure_clone(runtime, vm, node)  # confirms the guest is ours first
        await journal.write(runtime.sessions, op, Journal(configured=True))
    else:
        await confirm_vm(runtime, vm, node, "record")
    await update_vm(runtime.sessions, vm_id, node=node, status=status.value)
    await journal.write(runtime.sessions, op, Journal(vmid=vm.vmid, node=node))
    if op.params.get("start"):
        await power_vm(runtime, op, vm_id, "start")


INFLIGHT = (VmStatus.CLONING.value, VmStatus.STARTING.value)


async def on_shared_storage(proxmox: ProxmoxClient, config: VmConfig) -> bool:
    """True when every disk of the template is on shared storage (unknown = local)."""
    sids = storages_of(config)
    resources = await proxmox.cluster_resources("storage")
    shared = {r.storage for r in resources if r.storage and r.shared}
    return bool(sids) and sids <= shared


async def inflight_cores(runtime: Runtime, exclude_vm: str) -> dict[str, float]:
    """Cores of our clones still cloning/starting per node (not yet in PVE's stats)."""
    async with transaction(runtime.sessions) as session:
        inflight = await VmRepository(session).inflight_cores(INFLIGHT, exclude=exclude_vm)
        known = {n.name: n.cpu for n in await NodeRepository(session).all()}
    for name, cpu in known.items():
        if cpu > 0:
            runtime.node_cpu.setdefault(name, cpu)
    return inflight


async def place_clone(runtime: Runtime, vm_id: str, template_node: str, config: VmConfig) -> str:
    """The node for a new clone: least loaded (shared storage) or the template's node."""
    if not await on_shared_storage(runtime.proxmox, config):
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


async def template_disks(
    proxmox: ProxmoxClient, limits: Limits, vmid: int, node: str
) -> TemplateDisks:
    """A template's disks (read once per template while the limits live)."""
    cached = limits.templates.get(vmid)
    if cached is not None:
        return cached
    config = await proxmox.vm_config(node, vmid)
    resources = await proxmox.cluster_resources("storage")
    shared = frozenset(r.storage for r in resources if r.storage and r.shared)
    disks = TemplateDisks(node, config, frozenset(storages_of(config)), shared)
    limits.templates[vmid] = disks
    return disks


async def place_within_caps(runtime: Runtime, vm: Vm, template: Template) -> str:
    """The VM's node: kept if set, else chosen now (one placement at a time)."""
    if vm.node is not None:
        return vm.node
    limits = runtime.caps.current
    assert limits is not None
    template_node = await require_pool_node(runtime.proxmox, template.vmid)
    disks = await template_disks(runtime.proxmox, limits, template.vmid, template_node)
    async with limits.placing:
        node = await place_clone(runtime, vm.id, template_node, disks.config)
        await update_vm(runtime.sessions, vm.id, node=node, status=VmStatus.CLONING.value)
    return node


async def clone_within_caps(runtime: Runtime, op: Operation, vm_id: str) -> None:
    """The clone-and-configure of `clone_vm`, inside the node and storage slots when limited."""
    limits = runtime.caps.current
    if limits is None or journal.read(op).cloned:
        await clone_vm(runtime, op)
        return
    vm = await load_vm(runtime.sessions, vm_id)
    assert vm.template_id is not None
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).require(vm.template_id)
    node = await place_within_caps(runtime, vm, template)
    template_node = await require_pool_node(runtime.proxmox, template.vmid)
    disks = await template_disks(runtime.proxmox, limits, template.vmid, template_node)
    async with limits.clone_slot(node, disks, vm.full_clone):
        await clone_vm(runtime, op)
