"""Operation kinds `event.archive` (the event) and `event.vm_archive` (one VM of it).

Per VM, with the VM steps of `vms/`: HA resource removed (`ha_remove_vm`), a graceful
shutdown that turns into a stop after `WORKER_SHUTDOWN_TIMEOUT` (`power_vm` with
`force`), then the VM delete (identity checked, destroyed with purge, addresses and
vmid released, row deleted). Nothing is touched on Proxmox unless the vmid is in our pool
and the VM there is confirmed ours, right before each call (`IdentityMismatch` fails
that VM's archive and leaves its row as it was). A VM the sync found `foreign` (gone;
another guest holds its vmid) only leaves the database. The event ends `archived` when
every VM is gone; safe to run again (a VM already gone is simply skipped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import EventStatus, GuestIdentity, VmStatus
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.events.batch import ChildOutcome, done_vms, run_children
from openvle_core.events.outcome import finish_event
from openvle_core.guests.identity import pool_node
from openvle_core.operations import journal
from openvle_core.operations.kinds import OperationKind
from openvle_core.vms.delete import delete_vm
from openvle_core.vms.ha import ha_remove_vm
from openvle_core.vms.power import db_status, power_vm
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

ARCHIVE_ROUNDS = 3


async def event_vm_ids(sessions: async_sessionmaker[AsyncSession], event_id: str) -> list[str]:
    """Ids of the event's VMs still in the database."""
    async with transaction(sessions) as session:
        return [vm.id for vm in await VmRepository(session).for_event(event_id)]


async def archive_event(runtime: Runtime, op: Operation) -> None:
    """Archive the event `op.target_id` (see the module docstring)."""
    assert op.target_id is not None
    total = len(await event_vm_ids(runtime.sessions, op.target_id)) + len(
        await done_vms(runtime.sessions, op.id)
    )
    outcomes: list[ChildOutcome] = []
    async with runtime.caps.active():
        for _ in range(ARCHIVE_ROUNDS):
            todo = await event_vm_ids(runtime.sessions, op.target_id)
            if not todo:
                break
            done = total - len(todo)
            outcomes = await run_children(
                runtime,
                op,
                OperationKind.EVENT_VM_ARCHIVE,
                todo,
                {"force": True},
                already_done=done,
                total=total,
            )
    await finish_event(runtime.sessions, op, outcomes, EventStatus.ARCHIVED, archived_vms=total)


async def _vm_exists(sessions: async_sessionmaker[AsyncSession], vm_id: str) -> bool:
    async with transaction(sessions) as session:
        return await VmRepository(session).get(vm_id) is not None


async def archive_vm(runtime: Runtime, op: Operation) -> None:
    """One VM of an event: HA off, shut down (stop after the timeout), delete."""
    assert op.target_id is not None
    if not await _vm_exists(runtime.sessions, op.target_id):
        return  # an earlier run deleted it
    async with transaction(runtime.sessions) as session:
        vm = await VmRepository(session).require(op.target_id)
    gone = vm.vmid is None or vm.identity == GuestIdentity.FOREIGN
    node = None if gone or vm.vmid is None else await pool_node(runtime.proxmox, vm.vmid)
    if node and vm.vmid is not None and not journal.read(op).destroy_upid:
        await ha_remove_vm(runtime, vm.id)
        state = db_status(await runtime.proxmox.vm_status(node, vm.vmid))
        if state is VmStatus.RUNNING:
            await power_vm(runtime, op, vm.id, "shutdown")
    await delete_vm(runtime, op)
