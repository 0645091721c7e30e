"""Operation kinds `event.deploy` (the event) and `event.vm_deploy` (one VM of it).

The deploy makes the event's VM rows that are missing (one per participant per template,
named by `naming`), then runs a child operation per VM that is not done yet, in rounds:
a VM whose child failed for good gets a new child in the next round (`DEPLOY_ROUNDS`).
The event ends `deployed` when every VM runs, else the operation fails naming each VM
that did not and why. Running it again creates only what is missing.

Per VM the VM steps of `vms/` run, each checked against Proxmox first and recorded:
`vm.clone`'s handler (address, placement, clone with pool, the one config update with
SMBIOS family = slug and cloud-init), then the start with IP detection (`power_vm`), then
the HA resource (`ha_add_vm`). The clone waits for its node and storage slots (`limits`).

What each VM costs Proxmox (issue 16, counted by tests/events/test_economy.py): the
nextid hint, the clone, one config read (evidence recorded, identity checked, the base
of the one config update), that update, the start, the agent reads for the address, one
config read confirming the guest before the address is written (it also serves the HA
add that follows), the HA add; task ends come from one task list read per node and poll
shared by every VM in flight; pool membership from per-VM facts (the clone's `pool=`),
never a read of the whole pool. A step re-run after a crash reads what it needs again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import EventStatus, VmStatus
from openvle_core.db.models import Event, Operation, Template, Vm
from openvle_core.db.session import reading, transaction
from openvle_core.events.batch import ChildOutcome, done_vms, run_children
from openvle_core.events.outcome import finish_event
from openvle_core.events.repository import EventRepository
from openvle_core.events.vm_names import plan_names
from openvle_core.operations.kinds import OperationKind
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.ha import ha_add_vm
from openvle_core.vms.power import power_vm
from openvle_core.vms.provision import (
    clone_within_caps,
)
from openvle_core.vms.records import load_vm, update_vm
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

DEPLOY_ROUNDS = 3


async def ensure_vms(runtime: Runtime, event_id: str) -> list[str]:
    """The ids of every VM the event wants, creating the missing rows (status cloning)."""
    async with transaction(runtime.sessions) as session:
        event = await EventRepository(session).require(event_id)
        templates = await _templates(session, await EventRepository(session).template_ids(event_id))
        rows = await VmRepository(session).for_event(event_id)
        have = {(vm.participant, vm.template_id): vm for vm in rows}
        taken = await _names_of_others(session, event)
        pairs = [(t.id, t.name) for t in templates]
        plan = plan_names(event.slug, event.id, event.participants, pairs, taken)
        full = runtime.settings.vms.full_clone_default
        new = [
            Vm(
                name=p.name,
                template_id=p.template_id,
                event_id=event.id,
                participant=p.participant,
                status=VmStatus.CLONING.value,
                full_clone=full,
            )
            for p in plan
            if (p.participant, p.template_id) not in have
        ]
        await VmRepository(session).add_many(new)
        made = {(vm.participant, vm.template_id): vm.id for vm in new}
        return [
            have[k].id if k in have else made[k]
            for k in ((p.participant, p.template_id) for p in plan)
        ]


async def _templates(session: AsyncSession, template_ids: list[str]) -> list[Template]:
    repo = TemplateRepository(session)
    return [await repo.require(tid) for tid in template_ids]


async def _names_of_others(session: AsyncSession, event: Event) -> set[str]:
    """Names of other events' VMs that start like ours (a clash needs a suffix)."""
    prefix = event.slug.replace("_", "-")
    return await VmRepository(session).names_starting(f"{prefix}-", not_of_event=event.id)


async def deploy_event(runtime: Runtime, op: Operation) -> None:
    """Deploy the event `op.target_id` (see the module docstring)."""
    assert op.target_id is not None
    vm_ids = await ensure_vms(runtime, op.target_id)
    async with reading(runtime.sessions) as session:
        slug = (await EventRepository(session).require(op.target_id)).slug  # for SMBIOS
    outcomes: list[ChildOutcome] = []
    async with runtime.caps.active() as limits:
        for _ in range(DEPLOY_ROUNDS):
            done = await done_vms(runtime.sessions, op.id)
            todo = [vm for vm in vm_ids if vm not in done]
            if not todo:
                break
            outcomes = await run_children(
                runtime,
                op,
                OperationKind.EVENT_VM_DEPLOY,
                todo,
                {"start": False, "slug": slug},
                already_done=len(done),
                total=len(vm_ids),
            )
        peaks = {":".join(k): v for k, v in limits.peak.items()}
    await finish_event(runtime.sessions, op, outcomes, EventStatus.DEPLOYED, clone_slots_peak=peaks)


async def deploy_vm(runtime: Runtime, op: Operation) -> None:
    """One VM of an event: clone + configure, start + IP, HA (each step idempotent)."""
    assert op.target_id is not None
    vm = await load_vm(runtime.sessions, op.target_id)
    if vm.status == VmStatus.ERROR.value:
        vm = await update_vm(runtime.sessions, vm.id, status=VmStatus.CLONING.value)
    fresh = await clone_within_caps(runtime, op, vm.id, vm, starting=True)
    confirmed = await power_vm(runtime, op, vm.id, "start", fresh=fresh)
    await ha_add_vm(runtime, vm.id, confirmed=confirmed, vm=fresh.vm if fresh else None)
