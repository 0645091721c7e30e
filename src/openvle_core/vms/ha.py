"""HA resources for event VMs: add `vm:<vmid>` on deploy, remove on archive and delete.

Calling them twice is harmless: the add is sent and an `already defined` answer means
done (one request, where reading the cluster-wide HA list first was two), the removal
reads the HA list first. Both check the guest's identity right before they change it
(`IdentityMismatch`, row untouched), on a config read now or one the step before has
just read and confirmed.
`PVE_VMS_HA_ENABLED=False` makes `ha_add_vm` a no-op (removal always runs: a VM made HA
while it was on must still be released).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.db.models import Vm
from openvle_core.guests.identity import require_member_node, require_pool_node, require_vmid
from openvle_core.proxmox import ProxmoxClient, ProxmoxConflict
from openvle_core.proxmox.models import VmConfig
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.records import load_vm, update_vm

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def ha_vmids(proxmox: ProxmoxClient) -> set[int]:
    """vmids that are HA resources now."""
    return {r.vmid for r in await proxmox.ha_resources() if r.vmid is not None}


async def ha_add_vm(
    runtime: Runtime, vm_id: str, *, confirmed: VmConfig | None = None, vm: Vm | None = None
) -> bool:
    """Make our VM HA-managed (state started); False when HA is disabled. `confirmed`:
    the guest's config the caller has just read and confirmed as ours (no other read);
    `vm`: with `confirmed`, the row as the caller last wrote it (its vmid and name)."""
    if not runtime.settings.vms.ha_enabled:
        return False
    if vm is None or confirmed is None:
        vm = await load_vm(runtime.sessions, vm_id)
    vmid = require_vmid(vm)
    if confirmed is None:
        node = await require_member_node(runtime.proxmox, vmid)
        await confirm_vm(runtime, vm, node, "ha_add")
    try:
        await runtime.proxmox.ha_add(vmid, state="started", comment=f"OpenVLE {vm.name}")
    except ProxmoxConflict as exc:
        if "already defined" not in exc.message:
            raise
    await update_vm(runtime.sessions, vm_id, ha_managed=True)
    return True


async def ha_remove_vm(runtime: Runtime, vm_id: str) -> bool:
    """Stop HA-managing our VM (the VM keeps running); True if it was HA-managed."""
    vm = await load_vm(runtime.sessions, vm_id)
    removed = False
    if vm.vmid is not None and vm.vmid in await ha_vmids(runtime.proxmox):
        node = await require_pool_node(runtime.proxmox, vm.vmid)
        await confirm_vm(runtime, vm, node, "ha_remove")
        await runtime.proxmox.ha_remove(vm.vmid)
        removed = True
    await update_vm(runtime.sessions, vm_id, ha_managed=False)
    return removed
