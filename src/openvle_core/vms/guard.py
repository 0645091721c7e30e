"""The identity check of a VM row before each call that changes or destroys its guest.

`confirm_vm` reads the guest's config right before the call it guards and raises
`IdentityMismatch` unless the guest is the row's (guests/identity.py); callers write
nothing to the row before it. A `legacy` row (made before evidence was recorded) that
passes the old rule records its evidence here, once. `is_still_ours` is the quiet form
for failure hooks: they write a VM's real state only when the guest is still ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.db.models import Vm
from openvle_core.guests.identity import Evidence, Marks, claim_of, confirm, mismatch, refuse
from openvle_core.proxmox.models import VmConfig
from openvle_core.vms.records import update_vm

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def confirm_vm(runtime: Runtime, vm: Vm, node: str, action: str) -> VmConfig:
    """The config of the VM's guest, read now, if it is ours; `IdentityMismatch` otherwise."""
    assert vm.vmid is not None
    claim = claim_of(vm)
    config = await confirm(runtime.proxmox, node, vm.vmid, claim, action)
    if not claim.evidence.recorded:  # legacy, confirmed by the old rule: record it now
        marks = Marks.of(config)
        serial = marks.serial if marks.serial == vm.id else None
        columns = Evidence.of(marks, serial=serial).columns()
        await update_vm(runtime.sessions, vm.id, **columns)
        for key, value in columns.items():
            setattr(vm, key, value)
    return config


def check_config(vm: Vm, config: VmConfig, action: str) -> None:
    """`confirm_vm` on a config the caller has just read (no read here): raises
    `IdentityMismatch` (a refusal counted for `action`) unless the guest is the row's."""
    assert vm.vmid is not None
    claim = claim_of(vm)
    reason = mismatch(claim, Marks.of(config))
    if reason is not None:
        refuse(claim, vm.vmid, vm.node or "?", config, action, reason)


async def is_still_ours(runtime: Runtime, vm: Vm, node: str) -> bool:
    """Whether the guest at the VM's vmid is ours (no refusal counted, nothing written)."""
    assert vm.vmid is not None
    config = await runtime.proxmox.vm_config(node, vm.vmid)
    return mismatch(claim_of(vm), Marks.of(config)) is None
