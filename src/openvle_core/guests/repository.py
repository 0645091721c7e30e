"""All SQL about vmid reservations (and which vmids our VM and template rows hold)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.conflicts import add_unless_conflict
from openvle_core.db.models import Template, Vm, VmidReservation


class VmidReservationRepository:
    """Reservation rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def try_reserve(
        self, vmid: int, *, vm_id: str | None = None, operation_id: str | None = None
    ) -> bool:
        """Reserve `vmid`; False if it is already reserved (by anyone)."""
        row = VmidReservation(vmid=vmid, vm_id=vm_id, operation_id=operation_id)
        return await add_unless_conflict(self.session, row)

    async def get(self, vmid: int) -> VmidReservation | None:
        """The reservation of `vmid`, or None."""
        return await self.session.get(VmidReservation, vmid)

    async def reserved(self) -> set[int]:
        """Every reserved vmid."""
        return set((await self.session.scalars(select(VmidReservation.vmid))).all())

    async def for_vm(self, vm_id: str) -> Sequence[VmidReservation]:
        """Reservations made for a VM."""
        stmt = select(VmidReservation).where(VmidReservation.vm_id == vm_id)
        return (await self.session.scalars(stmt)).all()

    async def release(self, vmid: int) -> bool:
        """Drop the reservation; True if there was one."""
        stmt = delete(VmidReservation).where(VmidReservation.vmid == vmid)
        return bool(getattr(await self.session.execute(stmt), "rowcount", 0))

    async def in_use(self, vmid: int) -> bool:
        """Whether a VM or template row of ours holds `vmid`."""
        for model in (Vm, Template):
            stmt = select(model.id).where(model.vmid == vmid).limit(1)
            if await self.session.scalar(stmt) is not None:
                return True
        return False
