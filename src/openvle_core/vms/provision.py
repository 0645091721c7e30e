"""A template becomes a VM in our pool, configured, maybe started (`vm.clone`, and each VM
of an event's deploy).

Steps, each checked against Proxmox and recorded before the next: cloud-init address
(first, so an exhausted network fails before anything is cloned), node placement, the
clone itself (`guests.cloning.clone_guest`, which records the new guest's identity
evidence on the row before anything else is done to it), the one config update (on the
config confirmed as ours), the final status, the start. Placement: the template's node
for local disks, else the online node with the most free CPU (`placement.nodes`),
counting our clones not yet in Proxmox's figures. The clone first waits for its node
and storage slots (`runtime.caps`): inside an event operation here, with the event's
limits; otherwise in `clone_guest`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import GuestIdentity, VmStatus
from openvle_core.db.models import Operation, Template, Vm
from openvle_core.db.session import reading
from openvle_core.guests import vmids
from openvle_core.guests.cloning import CloneSpec, clone_guest
from openvle_core.guests.errors import IdentityMismatch
from openvle_core.guests.identity import Evidence, claim_of, pool_node, require_member_node
from openvle_core.metrics import PLACEMENTS_REFUSED
from openvle_core.nodes.repository import NodeRepository
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.placement.caps import Limits, TemplateDisks
from openvle_core.placement.disks import disk_mb_of, memory_mb_of, storages_of
from openvle_core.placement.errors import NoCapacity
from openvle_core.placement.nodes import (
    MIB,
    CloneNeeds,
    ClusterFigures,
    NodeFigures,
    StorageFigures,
    choose_node,
    storage_index,
)
from openvle_core.proxmox import ProxmoxClient
from openvle_core.proxmox.models import ClusterResource, VmConfig
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.configure import allocate_address, configure_clone
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.power import Fresh, db_status, power_vm
from openvle_core.vms.records import (
    NO_EVIDENCE,
    load_vm,
    record_vmid,
    update_in,
    update_vm,
    update_vm_noting,
)
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def _reserve_ip(runtime: Runtime, vm_id: str) -> None:
    """Claim the VM's cloud-init address before cloning (idempotent; cloud-init on)."""
    address = await allocate_address(runtime, vm_id)
    await update_vm(runtime.sessions, vm_id, ipv4=str(address))


@dataclass(frozen=True, slots=True)
class Cloned:
    """A guest this run's clone request made: its config as read to record its evidence,
    and the VM row as that record left it."""

    config: VmConfig
    vm: Vm


async def _clone(
    runtime: Runtime,
    op: Operation,
    vm_id: str,
    source: TemplateDisks | None,
    vm: Vm | None = None,
    template: Template | None = None,
) -> Cloned | None:
    """Place and clone; returns what `Cloned` holds when this run's clone request made
    the guest (None when an earlier run's did). `vm`, `template`: the rows if the
    caller has just read them."""
    if vm is None:
        vm = await load_vm(runtime.sessions, vm_id)
    assert vm.template_id is not None
    if template is None:
        async with reading(runtime.sessions) as session:
            template = await TemplateRepository(session).require(vm.template_id)
    template_node = await require_member_node(runtime.proxmox, template.vmid)
    node = vm.node
    if node is None:
        if source is None:
            source = await read_template_disks(runtime.proxmox, template.vmid, template_node)
        figures = await cluster_figures(runtime.proxmox)
        node = await place_clone(runtime, vm, template, source, figures)
        await update_vm(runtime.sessions, vm_id, node=node)
    latest: list[Vm] = []  # the row as the last of the writes below left it

    async def set_vmid(vmid: int | None) -> None:
        latest[:] = [await record_vmid(runtime.sessions, vm_id, vmid)]

    async def set_vmid_in(session: AsyncSession, vmid: int) -> None:
        latest[:] = [await update_in(session, vm_id, vmid=vmid, **NO_EVIDENCE)]

    async def set_evidence(evidence: Evidence) -> None:
        # recorded only for our finished clone: the journal's `cloned` in the same commit
        noted = Journal(cloned=True)
        columns = evidence.columns()
        latest[:] = [await update_vm_noting(runtime.sessions, vm_id, op, noted, **columns)]

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
        record_vmid_in=set_vmid_in,
        evidence=claim.evidence,
        legacy=claim.legacy,
        record_evidence=set_evidence,
        source_config=source.config if source is not None else None,
    )
    await clone_guest(runtime, op, spec)
    if not journal.read(op).cloned:
        await journal.write(runtime.sessions, op, Journal(cloned=True))
    if spec.sent_here and spec.config is not None and latest:
        return Cloned(spec.config, latest[-1])
    return None


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
    fresh = await provision_vm(runtime, op, starting=bool(op.params.get("start")))
    if op.params.get("start"):
        assert op.target_id is not None
        await power_vm(runtime, op, op.target_id, "start", fresh=fresh)


async def provision_vm(
    runtime: Runtime,
    op: Operation,
    source: TemplateDisks | None = None,
    *,
    vm: Vm | None = None,
    template: Template | None = None,
    starting: bool = False,
) -> Fresh | None:
    """Clone (unless done) and configure the VM of `op`; `source`: its template's disks
    and config if the caller has them; `vm`, `template`: the rows if the caller has just
    read them; `starting`: the caller starts the VM right after, so a guest this run
    cloned goes to `starting` in the configure step's write (not `stopped`, then
    `starting` in one more). Returns what the start needs not read again when this run
    cloned and configured the guest itself (`Fresh`), else None."""
    assert op.target_id is not None
    vm_id = op.target_id
    if runtime.settings.cloudinit.enabled:
        await _reserve_ip(runtime, vm_id)
        vm = None  # the address is on the row now
    cloned: Cloned | None = None
    if not journal.read(op).cloned:
        cloned = await _clone(runtime, op, vm_id, source, vm, template)
    if cloned is not None and not journal.read(op).configured:
        # cloned by this run, from a template: a new guest is stopped (nothing to read);
        # its config was read and its evidence recorded a moment ago
        vm = cloned.vm
        assert vm.vmid is not None
        node = await require_member_node(runtime.proxmox, vm.vmid)
        slug = op.params.get("slug")  # an event's deploy names it for every VM
        config = await configure_clone(
            runtime,
            vm,
            node,
            confirmed=cloned.config,
            slug=slug if isinstance(slug, str) else None,
            record_serial=False,
        )
        done = Journal(vmid=vm.vmid, node=node, configured=True)  # the update was sent
        status = VmStatus.STARTING if starting else VmStatus.STOPPED
        fields: dict[str, Any] = {"node": node, "status": status.value}
        if runtime.settings.vms.smbios_metadata and vm.identity_serial != vm.id:
            fields["identity_serial"] = vm.id  # our serial is in the config now
        vm = await update_vm_noting(runtime.sessions, vm_id, op, done, **fields)
        return Fresh(node, VmStatus.STOPPED, config, vm)
    vm = await load_vm(runtime.sessions, vm_id)
    assert vm.vmid is not None
    node = await require_member_node(runtime.proxmox, vm.vmid)
    done = Journal(vmid=vm.vmid, node=node)
    status = db_status(await runtime.proxmox.vm_status(node, vm.vmid))
    if not journal.read(op).configured:
        await configure_clone(runtime, vm, node)  # confirms the guest is ours first
        done.configured = True
    else:
        await confirm_vm(runtime, vm, node, "record")
    await update_vm_noting(runtime.sessions, vm_id, op, done, node=node, status=status.value)
    return None


PENDING = (VmStatus.CLONING.value, VmStatus.STARTING.value)
FIGURES_TTL = 10.0  # s a batch reuses one read of the nodes (PVE refreshes them as often)


def _node(resource: ClusterResource) -> NodeFigures:
    return NodeFigures(
        name=resource.node or "",
        online=resource.status == "online",
        cpu=float(resource.cpu or 0.0),
        maxcpu=int(resource.maxcpu or 0),
        mem_mb=(resource.mem or 0) // MIB,
        maxmem_mb=(resource.maxmem or 0) // MIB,
    )


def _storage(resource: ClusterResource) -> StorageFigures:
    room = max((resource.maxdisk or 0) - (resource.disk or 0), 0) // MIB
    return StorageFigures(resource.storage or "", resource.node or "", bool(resource.shared), room)


async def cluster_figures(proxmox: ProxmoxClient) -> ClusterFigures:
    """The nodes and storages now (two small reads: their size is the cluster's, not the
    pool's)."""
    nodes = [_node(r) for r in await proxmox.cluster_resources("node") if r.node]
    storages = [
        _storage(r)
        for r in await proxmox.cluster_resources("storage")
        if r.storage and r.node and r.status == "available"
    ]
    return ClusterFigures(nodes, storage_index(storages), time.monotonic())


async def batch_figures(proxmox: ProxmoxClient, limits: Limits | None) -> ClusterFigures:
    """The figures for one placement: read once per batch (at most every FIGURES_TTL s)."""
    if limits is None:
        return await cluster_figures(proxmox)
    cached = limits.figures
    if cached is None or time.monotonic() - cached.read_at > FIGURES_TTL:
        limits.figures = cached = await cluster_figures(proxmox)
    return cached


async def read_template_disks(proxmox: ProxmoxClient, vmid: int, node: str) -> TemplateDisks:
    """A template's disks from its config, and which of their storages are shared."""
    config = await proxmox.vm_config(node, vmid)
    resources = await proxmox.cluster_resources("storage")
    shared = frozenset(r.storage for r in resources if r.storage and r.shared)
    storages = frozenset(storages_of(config))
    return TemplateDisks(node, config, storages, shared, disk_mb_of(config))


async def template_disks(
    proxmox: ProxmoxClient, limits: Limits | None, vmid: int, node: str
) -> TemplateDisks:
    """A template's disks (read once per template while the limits live)."""
    cached = limits.templates.get(vmid) if limits is not None else None
    if cached is not None:
        return cached
    disks = await read_template_disks(proxmox, vmid, node)
    if limits is not None:
        limits.templates[vmid] = disks
    return disks


def clone_needs(template: Template, disks: TemplateDisks, full: bool) -> CloneNeeds:
    """What a clone of `template` asks of its node."""
    return CloneNeeds(
        memory_mb=template.memory_mb or memory_mb_of(disks.config) or 0,
        cores=template.cores or disks.config.cores or 1,
        template_node=disks.node,
        storages=disks.storages,
        shared=bool(disks.storages) and disks.storages <= disks.shared,
        full=full,
        disk_mb=disks.disk_mb,
    )


async def place_clone(
    runtime: Runtime, vm: Vm, template: Template, disks: TemplateDisks, figures: ClusterFigures
) -> str:
    """The node for a new clone: filters, then the most free CPU (`placement.nodes`);
    NoCapacity when no node passes."""
    async with reading(runtime.sessions) as session:
        pending = await VmRepository(session).pending(PENDING, exclude=vm.id)
        known = {n.name: n.cpu for n in await NodeRepository(session).all()}
    for name, cpu in known.items():
        if cpu > 0:
            runtime.node_cpu.setdefault(name, cpu)
    try:
        chosen = choose_node(
            figures.nodes,
            clone_needs(template, disks, vm.full_clone),
            storages=figures.storages,
            pending=pending,
            previous=runtime.node_cpu,
            overcommit=runtime.settings.proxmox.memory_overcommit,
        )
    except NoCapacity:
        PLACEMENTS_REFUSED.inc()
        raise
    for node in figures.nodes:
        if node.cpu > 0:
            runtime.node_cpu[node.name] = node.cpu
    return chosen


async def place_within_caps(runtime: Runtime, vm: Vm, template: Template) -> Vm:
    """The VM row with its node: kept if set, else chosen now (one placement at a time)."""
    if vm.node is not None:
        return vm
    limits = runtime.caps.current
    assert limits is not None
    template_node = await require_member_node(runtime.proxmox, template.vmid)
    disks = await template_disks(runtime.proxmox, limits, template.vmid, template_node)
    async with limits.placing:
        figures = await batch_figures(runtime.proxmox, limits)
        node = await place_clone(runtime, vm, template, disks, figures)
        return await update_vm(runtime.sessions, vm.id, node=node, status=VmStatus.CLONING.value)


async def clone_within_caps(
    runtime: Runtime, op: Operation, vm_id: str, vm: Vm | None = None, *, starting: bool = False
) -> Fresh | None:
    """The clone-and-configure of `clone_vm`, inside the node and storage slots when limited
    (`provision_vm`'s result). `vm`: the row if the caller has just read it; `starting`:
    as for `provision_vm`."""
    limits = runtime.caps.current
    if limits is None or journal.read(op).cloned:
        return await provision_vm(runtime, op, starting=starting)
    if vm is None:
        vm = await load_vm(runtime.sessions, vm_id)
    assert vm.template_id is not None
    async with reading(runtime.sessions) as session:
        template = await TemplateRepository(session).require(vm.template_id)
    if vm.node is None:
        vm = await place_within_caps(runtime, vm, template)
    assert vm.node is not None
    template_node = await require_member_node(runtime.proxmox, template.vmid)
    disks = await template_disks(runtime.proxmox, limits, template.vmid, template_node)
    async with limits.clone_slot(vm.node, disks, vm.full_clone):
        return await provision_vm(runtime, op, disks, vm=vm, template=template, starting=starting)
