"""VMID allocation without the nextid race: /cluster/nextid is a hint, our table reserves.

`reserve` takes the hint, skips ids reserved in `vmid_reservations` or used by a VM row,
and claims the first free one (the primary key makes two claims of one id impossible).
A collision reported later by Proxmox (another client took the id) is handled by the
caller: `release` and reserve again, avoiding the lost ids.

One hint serves the reservations of a batch for HINT_TTL seconds (the ids we reserve
meanwhile are skipped through our table; the hint moves past each one we take): a
deploy asks /cluster/nextid about once per HINT_TTL, not once per VM. An id another
client takes in between is a collision like any other; a reservation made after a
collision (`avoid` not empty) asks Proxmox again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.session import in_transaction, transaction
from openvle_core.guests.errors import VmidCollisions
from openvle_core.guests.repository import VmidReservationRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

SCAN_LIMIT = 1000
HINT_TTL = 2.0  # s one /cluster/nextid answer serves a batch's reservations


async def _hint(runtime: Runtime, fresh: bool) -> int:
    """Proxmox's next free vmid, asked at most every HINT_TTL s unless `fresh`."""
    now = time.monotonic()
    cached = runtime.vmid_hint
    if not fresh and cached is not None and now - cached[1] < HINT_TTL:
        return cached[0]
    hint = await runtime.proxmox.next_vmid()
    runtime.vmid_hint = (hint, now)
    return hint


async def reserve(
    runtime: Runtime,
    *,
    vm_id: str | None,
    op_id: str,
    avoid: frozenset[int] = frozenset(),
    also: Callable[[AsyncSession, int], Awaitable[object]] | None = None,
) -> int:
    """Reserve the first free vmid at or after Proxmox's hint, skipping `avoid` (lost ids).
    `also(session, vmid)`: the caller's record of the id, in the reservation's commit."""
    hint = await _hint(runtime, fresh=bool(avoid))

    async def claim(session: AsyncSession) -> int | None:
        reservations = VmidReservationRepository(session)
        reserved = await reservations.reserved()
        candidate = hint
        for _ in range(SCAN_LIMIT):
            free = candidate not in reserved and candidate not in avoid
            free = free and not await reservations.in_use(candidate)
            if free and await reservations.try_reserve(candidate, vm_id=vm_id, operation_id=op_id):
                if also is not None:
                    await also(session, candidate)
                return candidate
            candidate += 1
        return None

    vmid = await in_transaction(runtime.sessions, claim)
    if vmid is not None:
        cached = runtime.vmid_hint
        if cached is not None and cached[0] <= vmid:
            runtime.vmid_hint = (vmid + 1, cached[1])
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
