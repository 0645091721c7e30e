"""A VM row as the operation steps read and write it: each change in its own short
transaction (the steps are the outermost callers), with the changelog of every tracked one.

A crash therefore never loses a step Proxmox already did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.changelog.repository import ChangelogRepository
from openvle_core.changelog.tracking import apply_changes
from openvle_core.db.enums import GuestIdentity
from openvle_core.db.models import Operation, Vm
from openvle_core.db.session import reading, transaction
from openvle_core.logging import bind
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    pass

TRACKED_VM_FIELDS = ("status", "node", "ipv4", "vmid", "identity")
NO_EVIDENCE: dict[str, Any] = {
    "identity": GuestIdentity.UNCONFIRMED.value,
    "identity_serial": None,
    "identity_vmgenid": None,
    "identity_ctime": None,
}


async def load_vm(sessions: async_sessionmaker[AsyncSession], vm_id: str) -> Vm:
    """The VM row (VmNotFound if it is gone)."""
    async with reading(sessions) as session:
        return await VmRepository(session).require(vm_id)


async def update_vm(sessions: async_sessionmaker[AsyncSession], vm_id: str, **fields: Any) -> Vm:
    """Set VM columns; every changed status/node/ipv4/vmid/identity goes to the changelog."""
    async with transaction(sessions) as session:
        return await _update(session, vm_id, fields)


async def update_vm_noting(
    sessions: async_sessionmaker[AsyncSession],
    vm_id: str,
    op: Operation,
    entry: Journal,
    **fields: Any,
) -> Vm:
    """`update_vm` and the operation's `journal.write` of `entry`, in one commit (a step's
    outcome on the row and in the journal: both or neither, one write turn)."""
    async with transaction(sessions) as session:
        vm = await _update(session, vm_id, fields)
        await journal.merge(session, op, entry)
        return vm


async def update_in(session: AsyncSession, vm_id: str, **fields: Any) -> Vm:
    """`update_vm` inside the caller's transaction (it commits, with its own changes)."""
    return await _update(session, vm_id, fields)


async def _update(session: AsyncSession, vm_id: str, fields: dict[str, Any]) -> Vm:
    if fields.get("vmid") is not None:
        bind(vmid=fields["vmid"])
    vm = await VmRepository(session).require(vm_id)
    changes = apply_changes(vm, "vm", vm_id, fields, TRACKED_VM_FIELDS)
    await ChangelogRepository(session).add_many(changes)
    return vm


async def record_vmid(
    sessions: async_sessionmaker[AsyncSession], vm_id: str, vmid: int | None
) -> Vm:
    """A new vmid (or none) for the VM: the evidence of the old one no longer applies."""
    return await update_vm(sessions, vm_id, vmid=vmid, **NO_EVIDENCE)
