"""Will the event fit? A dry run of its deploy, from the last sync's figures (no Proxmox
call, no side effect).

The VMs a deploy would clone now (all of a new event; for a re-deploy, the ones it would
add) are placed one after another with the deploy's own filters and weigher
(`placement.plan`), against the nodes and storages the last sync saw, minus our clones
still pending. With cloud-init, the static addresses it needs are counted against the
free ones. The duration is estimated from our own history of per-VM deploys (the average
of the latest ones) and the clone caps, else from `DEFAULT_VM_DEPLOY_S`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Template
from openvle_core.events.repository import EventRepository
from openvle_core.ipam.allocator import count_free
from openvle_core.nodes.repository import NodeRepository, StorageRepository
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.placement.nodes import CloneNeeds, NodeFigures, storage_index
from openvle_core.placement.plan import NodePlan, StoragePlan, plan_placement
from openvle_core.settings import Settings
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository

DEFAULT_VM_DEPLOY_S = 30.0  # one VM cloned, configured, started, its IP read (no history yet)
PENDING = (VmStatus.CLONING.value, VmStatus.STARTING.value)


@dataclass(frozen=True)
class AddressPlan:
    """Static addresses (cloud-init) the event needs, and how many are free."""

    needed: int
    free: int


@dataclass
class EventPlan:
    """What deploying the event now would take, and whether it fits."""

    vms: int
    estimated_duration_s: float
    duration_basis: str
    nodes: list[NodePlan]
    storages: list[StoragePlan]
    addresses: AddressPlan | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """True when nothing stands in the way (`problems` is empty)."""
        return not self.problems


async def plan_event(session: AsyncSession, settings: Settings, event_id: str) -> EventPlan:
    """The plan of the event's deploy (EventNotFound if there is no such event)."""
    event = await EventRepository(session).require(event_id)
    template_ids = await EventRepository(session).template_ids(event.id)
    templates = [await TemplateRepository(session).require(tid) for tid in template_ids]
    done = await _cloned_pairs(session, event.id)
    nodes = await NodeRepository(session).figures()
    storages = list(await StorageRepository(session).figures())
    shared = {s.storage for s in storages if s.shared}
    full = settings.vms.full_clone_default and bool(storages)
    needs = {t.id: _needs(t, shared, full) for t in templates}
    clones = [
        (t.name, needs[t.id])
        for participant in range(1, event.participants + 1)
        for t in templates
        if (participant, t.id) not in done
    ]
    placement = plan_placement(
        clones,
        nodes,
        storages=storage_index(storages),
        pending=await VmRepository(session).pending(PENDING),
        overcommit=settings.proxmox.memory_overcommit,
    )
    plan = EventPlan(
        vms=len(clones),
        estimated_duration_s=0.0,
        duration_basis="",
        nodes=placement.nodes,
        storages=placement.storages,
        addresses=await _addresses(session, settings, len(clones)),
        problems=list(placement.problems) if nodes else [],
        notes=_notes(templates, nodes, storages_known=bool(storages)),
    )
    await _estimate(session, settings, plan)
    if plan.addresses is not None and plan.addresses.free < plan.addresses.needed:
        plan.problems.append(
            f"{plan.addresses.needed} static addresses are needed, "
            f"{plan.addresses.free} are free in {settings.cloudinit.ip_network}"
        )
    return plan


async def _cloned_pairs(session: AsyncSession, event_id: str) -> set[tuple[int, str]]:
    """(participant, template id) of the event's VMs that exist on Proxmox already."""
    return {
        (vm.participant or 0, vm.template_id or "")
        for vm in await VmRepository(session).for_event(event_id)
        if vm.vmid is not None and vm.status != VmStatus.MISSING.value
    }


def _needs(template: Template, shared: set[str], full: bool) -> CloneNeeds:
    """What one clone of `template` asks (disks unknown until the sync read them: taken as
    shared and free to copy, with a note)."""
    storages = frozenset(filter(None, (template.storages or "").split(",")))
    return CloneNeeds(
        memory_mb=template.memory_mb or 0,
        cores=template.cores or 1,
        template_node=template.node or "",
        storages=storages,
        shared=template.storages is None or (bool(storages) and storages <= shared),
        full=full and template.storages is not None,
        disk_mb=template.disk_mb or 0,
    )


def _notes(
    templates: Sequence[Template], nodes: Sequence[NodeFigures], *, storages_known: bool
) -> list[str]:
    notes = [
        f"the disks of template {t.name} are not known yet (the next sync reads them): "
        "taken as shared storage"
        for t in templates
        if t.storages is None
    ]
    if not nodes:
        notes.append("no sync has seen the cluster's nodes yet: placement not checked")
    elif not storages_known:
        notes.append("no sync has seen the storages yet: room for full clones not checked")
    return notes


async def _addresses(session: AsyncSession, settings: Settings, needed: int) -> AddressPlan | None:
    if not settings.cloudinit.enabled:
        return None
    free = await count_free(session, settings.cloudinit, up_to=needed)
    return AddressPlan(needed=needed, free=free)


async def _estimate(session: AsyncSession, settings: Settings, plan: EventPlan) -> None:
    """Waves of VMs deployed at once, times the average per-VM deploy."""
    kind = OperationKind.EVENT_VM_DEPLOY
    durations = await OperationRepository(session).recent_durations(kind)
    if durations:
        per_vm = statistics.fmean(durations)
        plan.duration_basis = f"average of the latest {len(durations)} VM deploys"
    else:
        per_vm = DEFAULT_VM_DEPLOY_S
        plan.duration_basis = f"default {DEFAULT_VM_DEPLOY_S:g} s per VM (no history yet)"
    worker = settings.worker
    nodes_used = sum(1 for n in plan.nodes if n.new_vms) or 1
    parallel = min(worker.event_parallel_vms, worker.clones_per_node * nodes_used)
    plan.estimated_duration_s = round(math.ceil(plan.vms / max(parallel, 1)) * per_vm, 1)
