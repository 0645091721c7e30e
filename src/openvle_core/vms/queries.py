"""Read side of VMs: one VM, a filtered page of VMs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Vm
from openvle_core.db.pagination import Page
from openvle_core.vms.repository import VmRepository


async def get_vm(session: AsyncSession, vm_id: str) -> Vm:
    """The VM with this UUID; VmNotFound otherwise."""
    return await VmRepository(session).require(vm_id)


async def list_vms(
    session: AsyncSession,
    *,
    event_id: str | None = None,
    template_id: str | None = None,
    node: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Vm]:
    """A page of VMs matching every given filter, oldest first."""
    return await VmRepository(session).list(
        event_id=event_id,
        template_id=template_id,
        node=node,
        status=status,
        limit=limit,
        cursor=cursor,
    )
