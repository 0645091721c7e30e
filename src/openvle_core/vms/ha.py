"""HA resources for event VMs: add `vm:<vmid>` on deploy, remove on archive and delete.

Both helpers check the HA configuration first, so calling them twice is harmless, and
the guest's identity right before they change it (`IdentityMismatch`, row untouched).
`PVE_VMS_HA_ENABLED=False` makes `ha_add_vm` a no-op (removal always runs: a VM made HA
while it was on must still be released).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.guests.identity import require_pool_node, require_vmid
from openvle_core.proxmox import ProxmoxClient
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.records import load_vm, update_vm

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def ha_vmids(proxmox: ProxmoxClient) -> set[int]:
    """vmids that are HA resources now."""
    return {r.vmid for r in await proxmox.ha_resources() if r.vmid is not None}


async def ha_add_vm(runtime: Runtime, vm_id: str) -> bool:
    """Make our VM HA-managed (state started); False when HA is disabled."""
    if not runtime.settings.vms.ha_enabled:
        return False
    vm = await load_vm(runtime.sessions, vm_id)
    vmid = require_vmid(vm)
    node = await require_pool_node(runtime.proxmox, vmid)
    await confirm_vm(runtime, vm, node, "ha_add")
    if vmid not in await ha_vmids(runtime.proxmox):
        await runtime.proxmox.ha_add(vmid, state="started", comment=f"OpenVLE {vm.name}")
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
