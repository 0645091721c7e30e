"""Operation kind `vm.delete`: HA removed, stopped, destroyed with purge, then the DB.

Refused for a vmid outside our pool, and (`IdentityMismatch`, row untouched) when the
guest there is not ours: its identity is checked right before each call (HA removal,
stop, destroy). A row the sync already found `foreign` (our VM is gone and someone
else's holds its vmid) only leaves the database. The destroy task's UPID is recorded
before waiting, so a re-run after a crash waits for it (or finds the VM gone because of
it) instead of refusing. The DB part releases the IP addresses and the vmid reservation
and deletes the row in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.changelog.repository import Change, ChangelogRepository
from openvle_core.db.enums import ChangeSource, GuestIdentity, VmStatus
from openvle_core.db.models import Operation, Vm
from openvle_core.db.session import transaction
from openvle_core.errors import TransientStep
from openvle_core.guests.identity import pool_node
from openvle_core.guests.repository import VmidReservationRepository
from openvle_core.ipam.allocator import release_ips
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.proxmox import OutsidePool, ProxmoxNotFound, ProxmoxTaskFailed
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.ha import ha_vmids
from openvle_core.vms.records import update_vm
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

DESTROY_TIMEOUT = 1800.0


async def forget_vm(sessions: async_sessionmaker[AsyncSession], vm_id: str) -> bool:
    """Release the VM's addresses and vmid and delete its row; False if already gone."""
    async with transaction(sessions) as session:
        vm = await VmRepository(session).get(vm_id)
        if vm is None:
            return False
        await release_ips(session, vm_id)
        for reservation in await VmidReservationRepository(session).for_vm(vm_id):
            await VmidReservationRepository(session).release(reservation.vmid)
        if vm.vmid is not None:
            await VmidReservationRepository(session).release(vm.vmid)
        change = Change("vm", vm_id, "status", vm.status, "deleted", ChangeSource.OPERATION)
        await ChangelogRepository(session).add_many([change])
        await VmRepository(session).delete(vm_id)
        return True


async def destroy(runtime: Runtime, op: Operation, vm: Vm, node: str) -> None:
    """HA off, stop if running, destroy with purge (UPID recorded first)."""
    assert vm.vmid is not None
    pve = runtime.proxmox
    upid = journal.read(op).destroy_upid
    if upid is None:
        if vm.vmid in await ha_vmids(pve):
            await confirm_vm(runtime, vm, node, "ha_remove")
            await pve.ha_remove(vm.vmid)
        if (await pve.vm_status(node, vm.vmid)).status == "running":
            await confirm_vm(runtime, vm, node, "stop")
            await pve.stop_vm(node, vm.vmid)
        await confirm_vm(runtime, vm, node, "delete")
        await update_vm(runtime.sessions, vm.id, status=VmStatus.DELETING.value)
        upid = await pve.start_delete(node, vm.vmid, purge=True)
        await journal.write(runtime.sessions, op, Journal(destroy_upid=upid))
        await journal.add_upid(runtime.sessions, op, upid)
    try:
        await pve.wait_task(upid, DESTROY_TIMEOUT)
    except ProxmoxNotFound as exc:  # the task is unknown: look at the VM again
        await journal.write(runtime.sessions, op, Journal(destroy_upid=None))
        raise TransientStep(f"destroy task {upid} vanished; checking Proxmox again") from exc
    except ProxmoxTaskFailed:
        await journal.write(runtime.sessions, op, Journal(destroy_upid=None))
        raise


async def _load(sessions: async_sessionmaker[AsyncSession], vm_id: str) -> Vm | None:
    async with transaction(sessions) as session:
        return await VmRepository(session).get(vm_id)


async def delete_vm(runtime: Runtime, op: Operation) -> None:
    """Delete the VM on Proxmox (if it is there and ours) and in the DB."""
    assert op.target_id is not None
    vm = await _load(runtime.sessions, op.target_id)
    if vm is None:
        return  # an earlier run finished
    if vm.vmid is not None and vm.identity != GuestIdentity.FOREIGN:
        node = await pool_node(runtime.proxmox, vm.vmid)
        if node:
            await destroy(runtime, op, vm, node)
        elif not journal.read(op).destroy_upid and vm.status not in _GONE:
            raise OutsidePool(vm.vmid, runtime.proxmox.settings.vms_pool)
    await forget_vm(runtime.sessions, vm.id)
    await journal.write(runtime.sessions, op, Journal(deleted_vmid=vm.vmid, deleted_name=vm.name))


# A VM in these states may legitimately be absent from Proxmox (never made, gone, or
# destroyed by an earlier run of this delete: `deleting` is set just before destroying).
_GONE = frozenset(
    {VmStatus.MISSING.value, VmStatus.ERROR.value, VmStatus.CLONING.value, VmStatus.DELETING.value}
)
