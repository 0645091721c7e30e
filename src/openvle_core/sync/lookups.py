"""Live looks at a few guests, with bounded concurrency: paused?, IPv4, identity marks.

Only the VMs that need one are asked (a handful per sync), never every VM. A permanent
error for one guest (gone meanwhile, no permission) is counted and that guest left as it
is; `ProxmoxUnavailable` means Proxmox itself is failing and ends the sync.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from openvle_core.db.enums import VmStatus
from openvle_core.guests.identity import Marks
from openvle_core.placement.disks import disk_mb_of, storages_of
from openvle_core.proxmox import ProxmoxClient, ProxmoxError, ProxmoxUnavailable
from openvle_core.proxmox.models import VmConfig
from openvle_core.sync.cluster import Guest
from openvle_core.sync.plan import GuestRef

T = TypeVar("T")
R = TypeVar("R")
# Per-sync caps: guests without an agent would otherwise be asked again on every sync.
MAX_IP_LOOKUPS = 500
MAX_SERIAL_READS = 200
PAUSED_QMP = frozenset({"paused", "suspended"})


async def bounded(
    items: Sequence[T], limit: int, key: Callable[[T], str], ask: Callable[[T], Awaitable[R]]
) -> tuple[dict[str, R], int]:
    """Run `ask` on every item, at most `limit` at once; permanent errors only counted."""
    semaphore = asyncio.Semaphore(limit)
    found: dict[str, R] = {}
    failed = 0

    async def one(item: T) -> None:
        nonlocal failed
        async with semaphore:
            try:
                found[key(item)] = await ask(item)
            except ProxmoxUnavailable:
                raise
            except ProxmoxError:
                failed += 1

    try:
        async with asyncio.TaskGroup() as group:
            for item in items:
                group.create_task(one(item))
    except* ProxmoxUnavailable as failure:  # the first one says why; the rest were cancelled
        raise failure.exceptions[0] from None
    return found, failed


def _sample(items: Sequence[T], cap: int) -> list[T]:
    """At most `cap` items, a different random share each sync so none starves."""
    return list(items) if len(items) <= cap else random.sample(list(items), cap)


async def live_statuses(
    proxmox: ProxmoxClient, refs: Sequence[GuestRef], limit: int
) -> tuple[dict[str, VmStatus], int]:
    """status/current for VMs the DB calls paused while the resources say running."""

    async def ask(ref: GuestRef) -> VmStatus:
        live = await proxmox.vm_status(ref.node, ref.vmid)
        if live.qmpstatus in PAUSED_QMP:
            return VmStatus.PAUSED
        return VmStatus.RUNNING if live.status == "running" else VmStatus.STOPPED

    return await bounded(refs, limit, lambda r: r.vm_id, ask)


def ip_sample(refs: Sequence[GuestRef], cap: int = MAX_IP_LOOKUPS) -> list[GuestRef]:
    """The VMs lacking an IPv4 whose guest agent this sync asks (at most `cap`)."""
    return _sample(refs, cap)


async def ipv4_of(proxmox: ProxmoxClient, ref: GuestRef, config: VmConfig | None) -> str | None:
    """A running VM's IPv4 through its guest agent (`config`: its config if just read)."""
    lookup = await proxmox.get_ipv4(ref.node, ref.vmid, config=config)
    return None if lookup.address is None else str(lookup.address)


async def ipv4_addresses(
    proxmox: ProxmoxClient,
    refs: Sequence[GuestRef],
    limit: int,
    configs: Mapping[int, VmConfig],
    cap: int = MAX_IP_LOOKUPS,
) -> tuple[dict[str, str | None], int, int]:
    """IPv4 through the guest agent for running VMs lacking one: (found, asked, failed);
    `configs` are the configs the identity checks just read (not read again)."""
    chosen = ip_sample(refs, max(cap, 0))

    async def ask(ref: GuestRef) -> str | None:
        return await ipv4_of(proxmox, ref, configs.get(ref.vmid))

    found, failed = await bounded(chosen, limit, lambda r: r.vm_id, ask)
    return found, len(chosen), failed


async def marks(
    proxmox: ProxmoxClient, guests: Sequence[Guest], limit: int
) -> tuple[dict[int, Marks], int]:
    """vmid -> identity marks (SMBIOS serial, vmgenid, ctime) of unmanaged guests from
    their config, for every config read; failures."""
    chosen = [g for g in _sample(guests, MAX_SERIAL_READS) if g.node and g.vmid is not None]

    async def ask(guest: Guest) -> Marks:
        return Marks.of(await proxmox.vm_config(guest.node or "", guest.vmid or 0))

    found, failed = await bounded(chosen, limit, lambda g: str(g.vmid), ask)
    return {int(vmid): found_marks for vmid, found_marks in found.items()}, failed


async def template_disks(
    proxmox: ProxmoxClient, guests: Sequence[Guest], limit: int
) -> tuple[dict[int, tuple[str, int]], int]:
    """vmid -> (storage ids, comma-separated; disks in MiB) of templates from their config
    (read once per template: the sync asks only for rows that lack them); failures."""

    async def ask(guest: Guest) -> tuple[str, int]:
        config = await proxmox.vm_config(guest.node or "", guest.vmid or 0)
        return ",".join(sorted(storages_of(config))), disk_mb_of(config)

    chosen = [g for g in guests if g.node and g.vmid is not None]
    found, failed = await bounded(chosen, limit, lambda g: str(g.vmid), ask)
    return {int(vmid): disks for vmid, disks in found.items()}, failed
