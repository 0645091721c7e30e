"""The one config update after a clone: SMBIOS metadata and cloud-init network settings.

Everything goes into a single PUT with the digest of the config just read and confirmed
as the VM's guest (so the guest checked is the guest changed), and only keys that differ
from the current config are sent, so a re-run after a crash sends nothing twice. Once
our SMBIOS serial is in the config it is recorded as evidence of the VM's identity.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.models import Vm
from openvle_core.db.session import in_transaction, reading
from openvle_core.guests.smbios import SmbiosMetadata, build_smbios1
from openvle_core.ipam.allocator import allocate_ip
from openvle_core.proxmox.models import VmConfig
from openvle_core.settings import Settings
from openvle_core.vms.guard import check_config, confirm_vm
from openvle_core.vms.records import update_vm
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def event_slug(sessions: async_sessionmaker[AsyncSession], event_id: str | None) -> str:
    """The slug of the VM's event ('' when it has none)."""
    if event_id is None:
        return ""
    async with reading(sessions) as session:
        return await VmRepository(session).event_slug(event_id) or ""


def smbios_options(settings: Settings, config: VmConfig, vm: Vm, slug: str) -> dict[str, object]:
    """`smbios1` if it differs from what we want (uuid kept)."""
    meta = SmbiosMetadata(
        manufacturer=settings.project_name,
        product=vm.name,
        version=vm.template_id or "",
        serial=vm.id,
        family=slug,
    )
    wanted = build_smbios1(config.smbios1, meta)
    return {} if config.smbios1 == wanted else {"smbios1": wanted}


def cloudinit_options(settings: Settings, config: VmConfig, address: str) -> dict[str, object]:
    """ipconfig0, nameserver, ciuser, cipassword, ciupgrade when the address is not set yet."""
    ci = settings.cloudinit
    network = ci.ip_network
    assert network is not None  # checked by the settings when cloud-init is enabled
    ipconfig = f"ip={address}/{network.prefixlen},gw={ci.gateway}"
    if config.option("ipconfig0") == ipconfig:
        return {}
    options: dict[str, object] = {"ipconfig0": ipconfig, "ciupgrade": ci.ciupgrade}
    if ci.dns_servers:
        options["nameserver"] = " ".join(ci.dns_servers)
    if ci.ciuser:
        options["ciuser"] = ci.ciuser
    if ci.cipassword is not None:
        options["cipassword"] = ci.cipassword.get_secret_value()
    return options


async def allocate_address(runtime: Runtime, vm_id: str) -> IPv4Address:
    """The VM's cloud-init address (its own if it has one), in a retried transaction."""

    async def allocate(session: AsyncSession) -> IPv4Address:
        return await allocate_ip(session, runtime.settings.cloudinit, vm_id)

    return await in_transaction(runtime.sessions, allocate)


async def configure_clone(
    runtime: Runtime,
    vm: Vm,
    node: str,
    *,
    confirmed: VmConfig | None = None,
    slug: str | None = None,
    record_serial: bool = True,
) -> VmConfig:
    """Apply our config in one update; returns the config it was based on (read and
    confirmed now, or `confirmed`: the config the clone step has just read and checked
    against the evidence it recorded; the update's digest makes it the one changed).
    `slug`: the VM's event slug if the caller knows it; `record_serial=False`: the
    caller records the serial as evidence itself, in its next write of the row."""
    assert vm.vmid is not None
    settings = runtime.settings
    if confirmed is not None:
        config = confirmed
        check_config(vm, config, "configure")
    else:
        config = await confirm_vm(runtime, vm, node, "configure")
    options: dict[str, object] = {}
    if settings.vms.smbios_metadata:
        if slug is None:
            slug = await event_slug(runtime.sessions, vm.event_id)
        options.update(smbios_options(settings, config, vm, slug))
    address: str | None = None
    if settings.cloudinit.enabled:
        address = str(await allocate_address(runtime, vm.id))
        options.update(cloudinit_options(settings, config, address))
    if options:
        await runtime.proxmox.update_vm_config(node, vm.vmid, options, digest=config.digest)
    if record_serial and settings.vms.smbios_metadata and vm.identity_serial != vm.id:
        await update_vm(runtime.sessions, vm.id, identity_serial=vm.id)
    return config
