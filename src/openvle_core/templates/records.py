"""A template row as the operation steps write it, with the changelog of status, node, name
and identity; and the identity check before a step changes or destroys its guest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.changelog.repository import ChangelogRepository
from openvle_core.changelog.tracking import apply_changes
from openvle_core.db.models import Template
from openvle_core.db.session import transaction
from openvle_core.guests.identity import Evidence, Marks, claim_of, confirm
from openvle_core.proxmox.models import VmConfig
from openvle_core.templates.repository import TemplateRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


TRACKED_TEMPLATE_FIELDS = ("status", "node", "name", "identity")


async def update_template(
    sessions: async_sessionmaker[AsyncSession], template_id: str, **fields: Any
) -> Template:
    """Set template columns, with changelog entries for status/node/name."""
    async with transaction(sessions) as session:
        template = await TemplateRepository(session).require(template_id)
        changes = apply_changes(template, "template", template_id, fields, TRACKED_TEMPLATE_FIELDS)
        await ChangelogRepository(session).add_many(changes)
        return template


async def confirm_template(
    runtime: Runtime, template: Template, node: str, action: str
) -> VmConfig:
    """The template guest's config, read now, if it is the row's (`IdentityMismatch`
    otherwise, nothing written); a `legacy` row records its evidence now, once."""
    claim = claim_of(template)
    config = await confirm(runtime.proxmox, node, template.vmid, claim, action)
    if not claim.evidence.recorded:
        columns = Evidence.of(Marks.of(config)).columns(serial=False)
        await update_template(runtime.sessions, template.id, **columns)
    return config
