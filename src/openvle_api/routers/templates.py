"""GET /templates, GET /templates/{id} (mutations: templates_write.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from openvle_api.deps import Paging, ReadAuth, Uow
from openvle_api.responses import ONE_ERRORS, READ_ERRORS
from openvle_api.routers import API_PREFIX
from openvle_api.schemas import Page, TemplateOut
from openvle_core.db.enums import TemplateStatus
from openvle_core.templates import queries

router = APIRouter(prefix=f"{API_PREFIX}/templates", tags=["templates"])


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
