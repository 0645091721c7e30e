"""GET /vms, GET /vms/{id} (mutations: vms_write.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from openvle_api.deps import Paging, ReadAuth, Uow
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routers import API_PREFIX
from openvle_api.schemas import Page, VmOut
from openvle_core.db.enums import VmStatus
from openvle_core.vms import queries

router = APIRouter(prefix=f"{API_PREFIX}/vms", tags=["vms"])


@router.get("", name="listVms", responses=READ_ERRORS, summary="List VMs")
async def list_vms(
    uow: Uow,
    _: ReadAuth,
    paging: Paging,
    event_id: Annotated[str | None, Query(max_length=36)] = None,
    template_id: Annotated[str | None, Query(max_length=36)] = None,
    node: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[VmStatus | None, Query()] = None,
) -> Page[VmOut]:
    """VMs matching every given filter, oldest first."""
    page = await queries.list_vms(
        uow.session,
        event_id=event_id,
        template_id=template_id,
        node=node,
        status=status,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return Page[VmOut](
        items=[VmOut.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/{vm_id}", name="getVm", responses=ONE_ERRORS, summary="Get a VM")
async def get_vm(vm_id: str, uow: Uow, _: ReadAuth) -> VmOut:
    """One VM by its OpenVLE UUID."""
    return VmOut.model_validate(await queries.get_vm(uow.session, vm_id))
