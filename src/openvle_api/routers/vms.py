"""VMs: list and get; clone, power actions, migrate and delete (202 + operation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from pydantic import TypeAdapter

from openvle_api.accepted import MUTATION_ERRORS, accepted
from openvle_api.deps import (
    API_PREFIX,
    AdminAuth,
    OperateAuth,
    Paging,
    ReadAuth,
    Reader,
    RuntimeDep,
    Uow,
    row_reader,
)
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.common import Page
from openvle_api.schemas.operations import OperationOut
from openvle_api.schemas.vms import UnmanagedGuestOut, VmCreate, VmMigrate, VmOut
from openvle_core.db.enums import GuestIdentity, VmStatus
from openvle_core.vms import queries, service

router = api_router(prefix=f"{API_PREFIX}/vms", tags=["vms"])
_VM_LIST = TypeAdapter(list[VmOut])  # one validation call per page, from plain dicts


@router.get("", name="listVms", responses=READ_ERRORS, summary="List VMs")
async def list_vms(
    reader: Reader,
    _: ReadAuth,
    paging: Paging,
    event_id: Annotated[str | None, Query(max_length=36)] = None,
    template_id: Annotated[str | None, Query(max_length=36)] = None,
    node: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[VmStatus | None, Query()] = None,
    identity: Annotated[GuestIdentity | None, Query()] = None,
) -> Page[VmOut]:
    """VMs matching every given filter, oldest first."""
    page = await queries.list_vm_rows(
        reader,
        event_id=event_id,
        template_id=template_id,
        node=node,
        status=status,
        identity=identity,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    items = _VM_LIST.validate_python([row._asdict() for row in page.items])
    return Page[VmOut](items=items, next_cursor=page.next_cursor)


@router.get(
    "/unmanaged",
    name="listUnmanagedGuests",
    responses=READ_ERRORS,
    summary="List the pool's VMs that are not ours",
)
async def list_unmanaged(
    reader: Reader, _: ReadAuth, paging: Paging, runtime: RuntimeDep
) -> Page[UnmanagedGuestOut]:
    """VMs in our pool the service does not manage, by vmid, as the last sync saw them:
    unknown ones, and those on the vmid of one of our VMs that is gone (`vm_id`). The
    service never touches them."""
    page = await queries.list_unmanaged(
        reader,
        runtime.snapshot,
        runtime.settings.proxmox.vms_pool,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    items = [UnmanagedGuestOut.model_validate(g) for g in page.items]
    return Page[UnmanagedGuestOut](items=items, next_cursor=page.next_cursor)


@router.get("/{vm_id}", name="getVm", responses=ONE_ERRORS, summary="Get a VM")
async def get_vm(vm_id: str, request: Request, _: ReadAuth) -> VmOut:
    """One VM by its OpenVLE UUID."""
    return VmOut.model_validate(await queries.get_vm_row(row_reader(request), vm_id))


@router.post(
    "",
    name="createVm",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Clone a VM from a template",
)
async def create_vm(
    body: VmCreate, uow: Uow, _: AdminAuth, runtime: RuntimeDep, response: Response
) -> OperationOut:
    """Queue a clone; the VM appears at once with status `cloning`."""
    op = await service.request_clone(uow.session, runtime.settings, **body.model_dump())
    return accepted(uow, response, op)


def _power_route(action: str) -> None:
    async def power(vm_id: str, uow: Uow, _: OperateAuth, response: Response) -> OperationOut:
        op = await service.request_power(uow.session, vm_id, action)
        return accepted(uow, response, op)

    power.__doc__ = POWER_DOCS[action]
    router.add_api_route(
        f"/{{vm_id}}/{action}",
        power,
        methods=["POST"],
        name=f"{action}Vm",
        status_code=202,
        responses=MUTATION_ERRORS,
        summary=f"{action.capitalize()} a VM",
    )


POWER_DOCS = {
    "start": "Start the VM.",
    "stop": "Stop the VM at once (like pulling the plug).",
    "shutdown": "Shut the VM down gracefully through the guest agent / ACPI.",
    "restart": "Reboot the VM gracefully.",
    "reset": "Reset the VM at once.",
    "pause": "Pause the VM.",
    "resume": "Resume a paused VM.",
}
for _action in POWER_DOCS:
    _power_route(_action)


@router.post(
    "/{vm_id}/migrate",
    name="migrateVm",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Migrate a VM",
)
async def migrate_vm(
    vm_id: str, body: VmMigrate, uow: Uow, _: AdminAuth, response: Response
) -> OperationOut:
    """Queue a migration to `target_node` (`online` for a running VM)."""
    op = await service.request_migrate(uow.session, vm_id, **body.model_dump())
    return accepted(uow, response, op)


@router.delete(
    "/{vm_id}",
    name="deleteVm",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Delete a VM",
)
async def delete_vm(vm_id: str, uow: Uow, _: AdminAuth, response: Response) -> OperationOut:
    """Queue the deletion on Proxmox (HA entry and IP released) and in the database."""
    op = await service.request_delete(uow.session, vm_id)
    return accepted(uow, response, op)
