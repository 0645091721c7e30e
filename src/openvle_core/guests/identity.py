"""Where a vmid lives in our pool, and whether the VM there is the one the DB means.

Nothing is deleted, reconfigured or reused unless its identity is confirmed: the SMBIOS
serial equals our VM UUID, or (before SMBIOS is written, right after the clone) the name
equals ours. A vmid outside our pool is refused before any request (`OutsidePool`).
"""

from __future__ import annotations

from openvle_core.db.models import Vm
from openvle_core.guests.errors import IdentityUnconfirmed, NotCloned
from openvle_core.guests.smbios import serial_of
from openvle_core.proxmox import OutsidePool, ProxmoxClient
from openvle_core.proxmox.models import VmConfig


def require_vmid(vm: Vm) -> int:
    """The VM's vmid; `NotCloned` if it never got one (its clone failed or is pending)."""
    if vm.vmid is None:
        raise NotCloned(f"VM {vm.name} has no Proxmox VM (its clone did not finish)")
    return vm.vmid


async def pool_node(proxmox: ProxmoxClient, vmid: int) -> str | None:
    """The node of `vmid` if it is in our pool now (fresh read), else None."""
    await proxmox.get_pool()
    members = proxmox.pool_members
    if vmid not in members:
        return None
    return members[vmid] or ""


async def require_pool_node(proxmox: ProxmoxClient, vmid: int) -> str:
    """The node of a vmid that must be in our pool (`OutsidePool` otherwise)."""
    node = await pool_node(proxmox, vmid)
    if not node:
        raise OutsidePool(vmid, proxmox.settings.vms_pool)
    return node


def is_ours(config: VmConfig, *, uuid: str, name: str) -> bool:
    """True when the serial is our UUID, or there is no other serial and the name is ours."""
    serial = serial_of(config.smbios1)
    if serial == uuid:
        return True
    return config.name == name and (serial is None or serial == uuid)


async def confirm(
    proxmox: ProxmoxClient, node: str, vmid: int, *, uuid: str, name: str
) -> VmConfig:
    """The VM's config if it is ours; `IdentityUnconfirmed` otherwise."""
    config = await proxmox.vm_config(node, vmid)
    if not is_ours(config, uuid=uuid, name=name):
        raise IdentityUnconfirmed(
            f"VM {vmid} on {node} is not confirmed as OpenVLE VM {uuid} "
            f"(name {config.name!r}, serial {serial_of(config.smbios1)!r}): refusing to touch it"
        )
    return config
