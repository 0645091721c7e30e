"""Pure diffing: the DB's last view against the pool's guests, field by field.

Nothing here does I/O. The result says which fields change (old, new), which VMs need a
live look (paused, IPv4), which running VMs report the same IPv4 (`ipv4_duplicate`) and
what is new in the pool (unmanaged VMs, templates). A guest at a row's vmid is only a
candidate: before any change is written, its identity is checked (`needs_check`, then
`apply_verdicts` with what its config said, `judge`); a row whose guest is not its own
becomes `missing` and `foreign`, one that cannot be checked now keeps its row as it is
until a later sync.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from openvle_core.db.enums import (
    TRANSITIONAL_VM_STATUSES,
    GuestIdentity,
    TemplateStatus,
    VmStatus,
)
from openvle_core.db.models import Template
from openvle_core.guests.identity import Claim, Evidence, Marks, claim_of, mismatch
from openvle_core.sync.cluster import (
    BUSY_LOCKS,
    Guest,
    cores,
    memory_mb,
    observed_status,
)
from openvle_core.vms.repository import VmView

Diff = dict[str, tuple[Any, Any]]
"""field -> (old, new) for one entity."""

_TRANSITIONAL = frozenset(status.value for status in TRANSITIONAL_VM_STATUSES)
SKIPPED_TEMPLATE_STATUSES = frozenset({TemplateStatus.CREATING, TemplateStatus.DELETING})
# Only a VM that runs holds its address; a stopped VM's last-known IPv4 may be reused.
ADDRESS_HOLDING = frozenset({VmStatus.RUNNING.value, VmStatus.PAUSED.value})


class GuestRef(NamedTuple):
    """A VM row paired with the pool guest it is, for a live look at Proxmox (one per
    present row and sync: a named tuple, made at a third of a frozen dataclass's cost)."""

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
    present: dict[str, GuestRef] = field(default_factory=dict)  # rows whose vmid is in the pool
    legacy: list[GuestRef] = field(default_factory=list)  # ... made before evidence existed
    foreign: list[GuestRef] = field(default_factory=list)  # ... held by a guest not theirs
    unverified: int = 0
    skipped: int = 0
    unknown: int = 0

    def change(self, vm_id: str, name: str, old: Any, new: Any) -> None:
        """Record one field change of one VM."""
        self.diffs.setdefault(vm_id, {})[name] = (old, new)

    def drop(self, vm_id: str) -> None:
        """Forget every change and live look of one VM (until a later sync)."""
        self.diffs.pop(vm_id, None)
        self.paused_checks = [r for r in self.paused_checks if r.vm_id != vm_id]
        self.ip_wanted = [r for r in self.ip_wanted if r.vm_id != vm_id]


@dataclass
class TemplatePlan:
    """Field changes per template id, templates to import and the skip/unknown counts."""

    diffs: dict[str, Diff] = field(default_factory=dict)
    imports: list[Guest] = field(default_factory=list)
    evidence: dict[int, Evidence] = field(default_factory=dict)  # of the imports, by vmid
    disks: dict[int, tuple[str, int]] = field(default_factory=dict)  # their storages, MiB
    foreign: list[int] = field(default_factory=list)
    unverified: int = 0
    skipped: int = 0
    unknown: int = 0


def is_skipped(view: VmView, skip: Collection[str]) -> bool:
    """Transitional VMs and VMs with an operation in flight (or just finished) are left be;
    so are VMs found `foreign` (their guest is gone, someone else's holds the vmid)."""
    return (
        view.id in skip
        or view.status in TRANSITIONAL_VM_STATUSES
        or view.identity == GuestIdentity.FOREIGN
    )


def plan_vms(
    views: Sequence[VmView],
    guests: Mapping[int, Guest],
    skip: Collection[str],
    adopted: Mapping[str, int],
) -> VmPlan:
    """Compare every VM row with its guest; `adopted` maps VM ids to their new vmid."""
    plan = VmPlan()
    present, guest_at, busy = plan.present, guests.get, BUSY_LOCKS
    # plain strings: a row's columns are strings, compared here 10,000 times a sync
    foreign, legacy = GuestIdentity.FOREIGN.value, GuestIdentity.LEGACY.value
    transitional = _TRANSITIONAL
    stopped, missing = VmStatus.STOPPED.value, VmStatus.MISSING.value
    new_ref = tuple.__new__  # a GuestRef made without its Python-level __new__: half the cost
    for view in views:  # the loop runs per VM row: checks inlined (is_skipped, ...)
        vm_id, vmid, name, node, status, ipv4, _dup, identity = view[:8]
        if adopted:
            vmid = adopted.get(vm_id, vmid)
        if identity == foreign:
            continue  # its guest is gone: nothing at its vmid is about it
        if vmid is None or status in transitional or vm_id in skip:
            plan.skipped += 1
            continue
        guest = guest_at(vmid)
        if guest is None or guest.template:
            if status != missing:
                plan.change(vm_id, "status", status, missing)
                plan.missing.append(vm_id)
            continue
        lock = guest.lock
        if lock in busy:
            plan.skipped += 1
            continue
        if vmid != view.vmid:
            plan.change(vm_id, "vmid", view.vmid, vmid)
        ref = present[vm_id] = new_ref(GuestRef, (vm_id, guest.node or node or "", vmid))
        if identity == legacy:
            plan.legacy.append(ref)
        if (
            lock is None  # the common case: `_plan_guest` would plan nothing
            and guest.status == status
            and guest.node == node
            and guest.name == name
            and (ipv4 is not None or status == stopped)
        ):
            continue
        _plan_guest(plan, view, guest, ref)
    return plan


def _plan_guest(plan: VmPlan, view: VmView, guest: Guest, ref: GuestRef) -> None:
    """Node, status, name and the live looks for one VM present in the pool."""
    if guest.node and guest.node != view.node:
        plan.change(view.id, "node", view.node, guest.node)
    status = observed_status(guest)
    if status is None:
        plan.unknown += 1  # stats lag after a clone: keep the DB's status, no flapping
        return
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
    diffs = plan.diffs
    for view in views:
        status, ipv4 = view.status, view.ipv4
        if (diff := diffs.get(view.id)) is not None:
            status = diff.get("status", (None, status))[1]
            ipv4 = diff.get("ipv4", (None, ipv4))[1]
        if ipv4 is not None and status in ADDRESS_HOLDING:
            holders.setdefault(str(ipv4), []).append(view.id)
    shared = {address: ids for address, ids in holders.items() if len(ids) > 1}
    flagged = {vm_id for ids in shared.values() for vm_id in ids}
    for view in views:
        if (view.id in flagged) != view.ipv4_duplicate and not is_skipped(view, skip):
            plan.change(view.id, "ipv4_duplicate", view.ipv4_duplicate, view.id in flagged)
    return shared


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a guest's config said about a row: `reason` None if the guest is the row's;
    `evidence` to record now (a legacy row, confirmed by the old rule for the first time)."""

    reason: str | None
    evidence: Evidence | None = None


def view_claim(view: VmView) -> Claim:
    """The claim of a VM row as the sync reads it."""
    evidence = Evidence(view.identity_vmgenid, view.identity_ctime, view.identity_serial)
    legacy = view.identity == GuestIdentity.LEGACY
    return Claim(view.name, evidence, uuid=view.id, legacy=legacy)


def judge(view: VmView, marks: Marks) -> Verdict:
    """Whether the guest whose config gave `marks` is the row's (guests/identity.py)."""
    claim = view_claim(view)
    reason = mismatch(claim, marks)
    if reason is None and not claim.evidence.recorded:
        serial = marks.serial if marks.serial == view.id else None
        return Verdict(None, Evidence.of(marks, serial=serial))
    return Verdict(reason)


def needs_check(plan: VmPlan) -> dict[str, GuestRef]:
    """Rows with a change or a live look planned from a guest: its identity comes first."""
    wanted = set(plan.diffs) | {r.vm_id for r in (*plan.paused_checks, *plan.ip_wanted)}
    return {vm_id: plan.present[vm_id] for vm_id in sorted(wanted) if vm_id in plan.present}


def apply_verdicts(
    plan: VmPlan,
    views: Mapping[str, VmView],
    needed: Collection[str],
    verdicts: Mapping[str, Verdict],
) -> None:
    """Keep the changes of rows whose guest is theirs (recording a legacy row's evidence),
    mark a row whose vmid holds another guest `missing` and `foreign`, and hold back the
    changes of rows that could not be checked (`needed` but no verdict)."""
    for vm_id in needed:
        if vm_id not in verdicts:
            plan.drop(vm_id)
            plan.unverified += 1
    for vm_id, verdict in verdicts.items():
        view = views[vm_id]
        if verdict.reason is not None:
            _mark_foreign(plan, view)
        elif verdict.evidence is not None:
            for name, new in verdict.evidence.columns().items():
                plan.change(vm_id, name, getattr(view, name), new)


def _mark_foreign(plan: VmPlan, view: VmView) -> None:
    plan.drop(view.id)
    plan.change(view.id, "identity", view.identity, GuestIdentity.FOREIGN.value)
    if view.status != VmStatus.MISSING:
        plan.change(view.id, "status", view.status, VmStatus.MISSING.value)
        plan.missing.append(view.id)
    plan.foreign.append(plan.present[view.id])


def unmanaged_guests(guests: Mapping[int, Guest], known_vmids: Collection[int]) -> list[Guest]:
    """Pool VMs (not templates) the DB does not know, once their stats are in."""
    unknown = guests.keys() - known_vmids  # a set difference: no loop over every guest here
    return [
        guest
        for guest in (guests[vmid] for vmid in sorted(unknown))
        if not guest.template and observed_status(guest) is not None
    ]


def adoptable_vms(
    views: Sequence[VmView], guests: Mapping[int, Guest], skip: Collection[str]
) -> dict[str, VmView]:
    """VM rows that may take over an unmanaged guest: not busy, and their vmid is gone."""
    return {
        v.id: v
        for v in views
        if not is_skipped(v, skip) and (v.vmid is None or v.vmid not in guests)
    }


def plan_templates(
    templates: Sequence[Template],
    guests: Mapping[int, Guest],
    skip: Collection[str],
    vm_vmids: Collection[int],
    converting: Collection[int] = (),
) -> TemplatePlan:
    """Compare template rows with the pool; pool templates nobody knows are imported
    (except those an operation is making into a template: it adds their rows)."""
    plan = TemplatePlan()
    for template in templates:
        if template.identity == GuestIdentity.FOREIGN:
            continue
        if template.id in skip or template.status in SKIPPED_TEMPLATE_STATUSES:
            plan.skipped += 1
            continue
        diff = _template_diff(template, guests.get(template.vmid), plan)
        if diff:
            plan.diffs[template.id] = diff
    known = {t.vmid for t in templates} | set(vm_vmids) | set(converting)
    new = [(vmid, g) for vmid, g in guests.items() if g.template and g.name and vmid not in known]
    plan.imports = [g for _vmid, g in sorted(new)]
    return plan


def _template_diff(template: Template, guest: Guest | None, plan: TemplatePlan) -> Diff:
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


def template_checks(
    plan: TemplatePlan, templates: Sequence[Template], guests: Mapping[int, Guest]
) -> list[Template]:
    """Templates with a change planned from a template guest at their vmid."""
    return [
        t
        for t in templates
        if t.id in plan.diffs and (g := guests.get(t.vmid)) is not None and g.template
    ]


def apply_template_checks(
    plan: TemplatePlan, checked: Sequence[Template], marks: Mapping[str, Marks]
) -> None:
    """As `apply_verdicts`, for templates: `marks` holds the configs that could be read."""
    for template in checked:
        found = marks.get(template.id)
        if found is None:
            del plan.diffs[template.id]
            plan.unverified += 1
            continue
        claim = claim_of(template)
        if mismatch(claim, found) is not None:
            diff: Diff = {"identity": (template.identity, GuestIdentity.FOREIGN.value)}
            if template.status != TemplateStatus.MISSING:
                diff["status"] = (template.status, TemplateStatus.MISSING.value)
            plan.diffs[template.id] = diff
            plan.foreign.append(template.vmid)
        elif not claim.evidence.recorded:
            for name, new in Evidence.of(found).columns(serial=False).items():
                plan.diffs[template.id][name] = (getattr(template, name), new)
