"""VMID allocation without the nextid race: /cluster/nextid is a hint, our table reserves.

`reserve` takes the hint, skips ids reserved in `vmid_reservations` or used by a VM row,
and claims the first free one (the primary key makes two claims of one id impossible).
A collision reported later by Proxmox (another client took the id) is handled by the
caller: `release` and reserve again, avoiding the lost ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.session import in_transaction, transaction
from openvle_core.guests.errors import VmidCollisions
from openvle_core.guests.repository import VmidReservationRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

SCAN_LIMIT = 1000


async def reserve(
    runtime: Runtime, *, vm_id: str | None, op_id: str, avoid: frozenset[int] = frozenset()
) -> int:
    """Reserve the first free vmid at or after Proxmox's hint, skipping `avoid` (lost ids)."""
    hint = await runtime.proxmox.next_vmid()

    async def claim(session: AsyncSession) -> int | None:
        reservations = VmidReservationRepository(session)
        reserved = await reservations.reserved()
        candidate = hint
        for _ in range(SCAN_LIMIT):
            free = candidate not in reserved and candidate not in avoid
            free = free and not await reservations.in_use(candidate)
            if free and await reservations.try_reserve(candidate, vm_id=vm_id, operation_id=op_id):
                return candidate
            candidate += 1
        return None

    vmid = await in_transaction(runtime.sessions, claim)
    if vmid is not None:
        return vmid
    raise VmidCollisions(f"no free vmid found in {SCAN_LIMIT} ids after the nextid hint")


async def release(sessions: async_sessionmaker[AsyncSession], vmid: int) -> None:
    """Drop the reservation of `vmid`."""
    async with transaction(sessions) as session:
        await VmidReservationRepository(session).release(vmid)


def is_collision(message: str, vmid: int) -> bool:
    """Whether a Proxmox error says another guest already holds `vmid`."""
    return (
        "already exists" in message
        or f"lock-{vmid}.conf" in message
        or "config file already exists" in message
    )
