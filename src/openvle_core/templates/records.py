"""A template row as the operation steps write it, with the changelog of status, node and name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.changelog.repository import ChangelogRepository
from openvle_core.changelog.tracking import apply_changes
from openvle_core.db.models import Template
from openvle_core.db.session import transaction
from openvle_core.templates.repository import TemplateRepository

if TYPE_CHECKING:
    pass


TRACKED_TEMPLATE_FIELDS = ("status", "node", "name")


async def update_template(
    sessions: async_sessionmaker[AsyncSession], template_id: str, **fields: Any
) -> Template:
    """Set template columns, with changelog entries for status/node/name."""
    async with transaction(sessions) as session:
        template = await TemplateRepository(session).require(template_id)
        changes = apply_changes(template, "template", template_id, fields, TRACKED_TEMPLATE_FIELDS)
        await ChangelogRepository(session).add_many(changes)
        return template
