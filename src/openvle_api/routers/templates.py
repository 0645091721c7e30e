"""Templates: list and get; create, change and delete (202 + operation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from openvle_api.accepted import MUTATION_ERRORS, accepted
from openvle_api.deps import API_PREFIX, AdminAuth, Paging, ReadAuth, RuntimeDep, Uow
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.common import Page
from openvle_api.schemas.operations import OperationOut
from openvle_api.schemas.templates import TemplateCreate, TemplateOut, TemplatePatch
from openvle_core.db.enums import TemplateStatus
from openvle_core.templates import queries, service
from openvle_core.templates.membership import PoolView

router = api_router(prefix=f"{API_PREFIX}/templates", tags=["templates"])


@router.get("", name="listTemplates", responses=READ_ERRORS, summary="List templates")
async def list_templates(
    uow: Uow,
    _: ReadAuth,
    paging: Paging,
    status: Annotated[TemplateStatus | None, Query()] = None,
) -> Page[TemplateOut]:
    """Templates in the pool, oldest first."""
    page = await queries.list_templates(
        uow.session, status=status, limit=paging.limit, cursor=paging.cursor
    )
    items = [TemplateOut.model_validate(t) for t in page.items]
    return Page[TemplateOut](items=items, next_cursor=page.next_cursor)


@router.get("/{template_id}", name="getTemplate", responses=ONE_ERRORS, summary="Get a template")
async def get_template(template_id: str, uow: Uow, _: ReadAuth) -> TemplateOut:
    """One template: vmid, name, node, cores, memory_mb, status."""
    return TemplateOut.model_validate(await queries.get_template(uow.session, template_id))


@router.post(
    "",
    name="createTemplate",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Create a template",
)
async def create_template(
    body: TemplateCreate, uow: Uow, _: AdminAuth, runtime: RuntimeDep, response: Response
) -> OperationOut:
    """Convert pool VM `source_vmid` into a template (404 unless in the pool at the last
    sync), or derive one from a template."""
    view = PoolView(runtime.snapshot, runtime.settings.proxmox.vms_pool)
    op = await service.request_create_template(uow.session, **body.model_dump(), pool_view=view)
    return accepted(uow, response, op)


@router.patch(
    "/{template_id}",
    name="updateTemplate",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Change a template",
)
async def update_template(
    template_id: str, body: TemplatePatch, uow: Uow, _: AdminAuth, response: Response
) -> OperationOut:
    """Queue a change of name, cores, memory_mb or description."""
    changes = body.model_dump(exclude_unset=True)
    op = await service.request_update_template(uow.session, template_id, **changes)
    return accepted(uow, response, op)


@router.delete(
    "/{template_id}",
    name="deleteTemplate",
    status_code=202,
    responses=MUTATION_ERRORS,
    summary="Delete a template",
)
async def delete_template(
    template_id: str, uow: Uow, _: AdminAuth, response: Response
) -> OperationOut:
    """Queue the deletion; 409 while VMs (linked clones) still use the template."""
    op = await service.request_delete_template(uow.session, template_id)
    return accepted(uow, response, op)
