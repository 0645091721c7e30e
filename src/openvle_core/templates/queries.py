"""Read side of templates: one template, a page of templates."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Template
from openvle_core.db.pagination import Page
from openvle_core.templates.repository import TemplateRepository


async def get_template(session: AsyncSession, template_id: str) -> Template:
    """The template with this id; TemplateNotFound otherwise."""
    return await TemplateRepository(session).require(template_id)


async def list_templates(
    session: AsyncSession,
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Template]:
    """A page of templates (optionally of one status), oldest first."""
    return await TemplateRepository(session).list(status=status, limit=limit, cursor=cursor)
