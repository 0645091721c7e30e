"""The cloud-init address allocator: the first free address of the VM network.

Skips the network and broadcast addresses, the gateway, the DNS servers (`PVE_VMS_DNS`),
`PVE_VMS_EXCLUDED_IPS` and every address already allocated. A VM still holding an
address that is now reserved or excluded (the settings changed) gets a new one.
Concurrency-safe: the (network, address) pair is unique, so two allocators racing for
one address cannot both win; the loser moves on to the next.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.ipam.errors import NetworkExhausted
from openvle_core.ipam.repository import IpAllocationRepository
from openvle_core.settings import CloudInitSettings


def excluded(settings: CloudInitSettings, address: ipaddress.IPv4Address) -> bool:
    """True for an address no VM may get (reserved, or in PVE_VMS_EXCLUDED_IPS)."""
    if address in settings.reserved_addresses:
        return True
    return any(first <= address <= last for first, last in settings.excluded_ranges)


def candidates(settings: CloudInitSettings) -> Iterator[ipaddress.IPv4Address]:
    """Usable host addresses of the network, lowest first."""
    network = settings.ip_network
    if network is None:
        raise ValueError("PVE_VMS_NETWORK and PVE_VMS_SUBNET are not set")
    for address in network.hosts():
        if not excluded(settings, address):
            yield address


async def allocate_ip(
    session: AsyncSession, settings: CloudInitSettings, vm_id: str
) -> ipaddress.IPv4Address:
    """The VM's address in the network: its existing one, else the first free one."""
    network = settings.ip_network
    if network is None:
        raise ValueError("PVE_VMS_NETWORK and PVE_VMS_SUBNET are not set")
    repo = IpAllocationRepository(session)
    for held in await repo.for_vm(vm_id):
        if held.network == str(network):
            address = ipaddress.IPv4Address(held.address)
            if not excluded(settings, address):
                return address
            await repo.release(held.network, held.address)
    taken = await repo.allocated(str(network))
    for address in candidates(settings):
        if str(address) in taken:
            continue
        if await repo.try_allocate(str(network), str(address), vm_id):
            return address
    raise NetworkExhausted(f"no free IPv4 address left in network {network}")


async def require_free_ip(session: AsyncSession, settings: CloudInitSettings) -> None:
    """Raise NetworkExhausted when every usable address is allocated (a request-time check;
    the clone's own allocation stays the authority, as clones queued meanwhile take addresses)."""
    network = settings.ip_network
    if network is None:
        raise ValueError("PVE_VMS_NETWORK and PVE_VMS_SUBNET are not set")
    taken = await IpAllocationRepository(session).allocated(str(network))
    if not any(str(address) not in taken for address in candidates(settings)):
        raise NetworkExhausted(f"no free IPv4 address left in network {network}")


async def release_ips(session: AsyncSession, vm_id: str) -> int:
    """Free every address of the VM (on delete)."""
    return await IpAllocationRepository(session).release_for_vm(vm_id)


async def count_free(session: AsyncSession, settings: CloudInitSettings, up_to: int) -> int:
    """How many usable addresses are free, counted up to `up_to` (a plan asks for what
    an event needs; a /8 need not be walked to the end)."""
    network = settings.ip_network
    if network is None:
        raise ValueError("PVE_VMS_NETWORK and PVE_VMS_SUBNET are not set")
    taken = await IpAllocationRepository(session).allocated(str(network))
    free = 0
    for address in candidates(settings):
        if free >= up_to:
            break
        free += str(address) not in taken
    return free
