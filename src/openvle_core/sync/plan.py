"""Pure diffing: the DB's last view against the pool's guests, field by field.

Nothing here does I/O. The result says which fields change (old, new), which VMs need a
live look (paused, IPv4), which running VMs report the same IPv4 (`ipv4_duplicate`) and
what is new in the pool (unmanaged VMs, templates).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openvle_core.db.enums import TRANSITIONAL_VM_STATUSES, TemplateStatus, VmStatus
from openvle_core.db.models import Template
from openvle_core.proxmox.models import ClusterResource
from openvle_core.sync.cluster import cores, is_locked_busy, memory_mb, observed_status
from openvle_core.vms.repository import VmView

Diff = dict[str, tuple[Any, Any]]
"""field -> (old, new) for one entity."""

SKIPPED_TEMPLATE_STATUSES = frozenset({TemplateStatus.CREATING, TemplateStatus.DELETING})
# Only a VM that runs holds its address; a stopped VM's last-known IPv4 may be reused.
ADDRESS_HOLDING = frozenset({VmStatus.RUNNING.value, VmStatus.PAUSED.value})


@dataclass(frozen=True, slots=True)
class GuestRef:
    """A VM row paired with the pool guest it is, for a live look at Proxmox."""

    vm_id: str
    node: str
    vmid: int


@dataclass
class VmPlan:
    """Field changes per VM id plus the VMs that need a live look."""

    diffs: dict[str, Diff] = field(default_factory=dict)
    paused_checks: list[GuestRef] = field(default_factory=list)
    ip_wanted: list[GuestRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: int = 0
    unknown: int = 0

    def change(self, vm_id: str, name: str, old: Any, new: Any) -> None:
        """Record one field change of one VM."""
        self.diffs.setdefault(vm_id, {})[name] = (old, new)


@dataclass
class TemplatePlan:
    """Field changes per template id, templates to import and the skip/unknown counts."""

    diffs: dict[str, Diff] = field(default_factory=dict)
    imports: list[ClusterResource] = field(default_factory=list)
    skipped: int = 0
    unknown: int = 0


def is_skipped(view: VmView, skip: Collection[str]) -> bool:
    """Transitional VMs and VMs with an operation in flight (or just finished) are left be."""
    return view.id in skip or view.status in TRANSITIONAL_VM_STATUSES


def plan_vms(
    views: Sequence[VmView],
    guests: Mapping[int, ClusterResource],
    skip: Collection[str],
    adopted: Mapping[str, int],
) -> VmPlan:
    """Compare every VM row with its guest; `adopted` maps VM ids to their new vmid."""
    plan = VmPlan()
    for view in views:
        vmid = adopted.get(view.id, view.vmid)
        if is_skipped(view, skip) or vmid is None:
            plan.skipped += 1
            continue
        guest = guests.get(vmid)
        if guest is None or guest.template:
            if view.status != VmStatus.MISSING:
                plan.change(view.id, "status", view.status, VmStatus.MISSING.value)
                plan.missing.append(view.id)
            continue
        if is_locked_busy(guest):
            plan.skipped += 1
            continue
        if vmid != view.vmid:
            plan.change(view.id, "vmid", view.vmid, vmid)
        _plan_guest(plan, view, guest, vmid)
    return plan


def _plan_guest(plan: VmPlan, view: VmView, guest: ClusterResource, vmid: int) -> None:
    """Node, status, name and the live looks for one VM present in the pool."""
    if guest.node and guest.node != view.node:
        plan.change(view.id, "node", view.node, guest.node)
    status = observed_status(guest)
    if status is None:
        plan.unknown += 1  # stats lag after a clone: keep the DB's status, no flapping
        return
    ref = GuestRef(view.id, guest.node or view.node or "", vmid)
    if view.status == VmStatus.PAUSED and status == VmStatus.RUNNING:
        plan.paused_checks.append(ref)
    else:
        if status != view.status:
            plan.change(view.id, "status", view.status, status.value)
        if status == VmStatus.RUNNING and view.ipv4 is None:
            plan.ip_wanted.append(ref)
    if guest.name and guest.name != view.name:
        plan.change(view.id, "name", view.name, guest.name)


def plan_ipv4_duplicates(
    plan: VmPlan, views: Sequence[VmView], skip: Collection[str]
) -> dict[str, list[str]]:
    """Flag (and unflag) VMs whose IPv4 another running VM reports too.

    Works on the state after `plan`'s changes (new statuses and addresses included);
    each flag that changes is an `ipv4_duplicate` change of the VM, written and logged
    like any other (VMs the sync skips keep theirs until a later sync). Returns each
    shared address with the ids of the VMs reporting it.
    """
    holders: dict[str, list[str]] = {}
    for view in views:
        diff = plan.diffs.get(view.id, {})
        status = diff.get("status", (None, view.status))[1]
        ipv4 = diff.get("ipv4", (None, view.ipv4))[1]
        if ipv4 is not None and status in ADDRESS_HOLDING:
            holders.setdefault(str(ipv4), []).append(view.id)
    shared = {address: ids for address, ids in holders.items() if len(ids) > 1}
    flagged = {vm_id for ids in shared.values() for vm_id in ids}
    for view in views:
        if (view.id in flagged) != view.ipv4_duplicate and not is_skipped(view, skip):
            plan.change(view.id, "ipv4_duplicate", view.ipv4_duplicate, view.id in flagged)
    return shared


def unmanaged_guests(
    guests: Mapping[int, ClusterResource], known_vmids: Collection[int]
) -> list[ClusterResource]:
    """Pool VMs (not templates) the DB does not know, once their stats are in."""
    return [
        g
        for vmid, g in sorted(guests.items())
        if vmid not in known_vmids and not g.template and observed_status(g) is not None
    ]


def adoptable_vms(
    views: Sequence[VmView], guests: Mapping[int, ClusterResource], skip: Collection[str]
) -> dict[str, VmView]:
    """VM rows that may take over an unmanaged guest: not busy, and their vmid is gone."""
    return {
        v.id: v
        for v in views
        if not is_skipped(v, skip) and (v.vmid is None or v.vmid not in guests)
    }


def plan_templates(
    templates: Sequence[Template],
    guests: Mapping[int, ClusterResource],
    skip: Collection[str],
    vm_vmids: Collection[int],
    converting: Collection[int] = (),
) -> TemplatePlan:
    """Compare template rows with the pool; pool templates nobody knows are imported
    (except those an operation is making into a template: it adds their rows)."""
    plan = TemplatePlan()
    for template in templates:
        if template.id in skip or template.status in SKIPPED_TEMPLATE_STATUSES:
            plan.skipped += 1
            continue
        diff = _template_diff(template, guests.get(template.vmid), plan)
        if diff:
            plan.diffs[template.id] = diff
    known = {t.vmid for t in templates} | set(vm_vmids) | set(converting)
    plan.imports = [
        g for vmid, g in sorted(guests.items()) if g.template and g.name and vmid not in known
    ]
    return plan


def _template_diff(template: Template, guest: ClusterResource | None, plan: TemplatePlan) -> Diff:
    if guest is not None and observed_status(guest) is None:
        plan.unknown += 1
        return {}
    if guest is None or not guest.template:
        if template.status == TemplateStatus.MISSING:
            return {}
        return {"status": (template.status, TemplateStatus.MISSING.value)}
    wanted: dict[str, Any] = {
        "name": guest.name,
        "node": guest.node,
        "cores": cores(guest),
        "memory_mb": memory_mb(guest),
    }
    diff: Diff = {
        k: (getattr(template, k), v)
        for k, v in wanted.items()
        if v is not None and getattr(template, k) != v
    }
    if template.status in {TemplateStatus.MISSING, TemplateStatus.ERROR}:
        diff["status"] = (template.status, TemplateStatus.AVAILABLE.value)
    return diff
