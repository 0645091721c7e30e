"""All SQL about templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.bulk import update_by_id
from openvle_core.db.models import Template, Vm
from openvle_core.db.pagination import Page, paginate
from openvle_core.db.types import utcnow
from openvle_core.templates.errors import TemplateNotFound


class TemplateRepository:
    """Template rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, template_id: str) -> Template | None:
        """The template with this id, or None."""
        return await self.session.get(Template, template_id)

    async def require(self, template_id: str) -> Template:
        """The template with this id; TemplateNotFound otherwise."""
        template = await self.get(template_id)
        if template is None:
            raise TemplateNotFound(f"template {template_id} not found")
        return template

    async def get_by_vmid(self, vmid: int) -> Template | None:
        """The template with this Proxmox vmid, or None."""
        return await self.session.scalar(select(Template).where(Template.vmid == vmid))

    async def add(self, template: Template) -> Template:
        """Stage a new template (flushed so its id is set)."""
        self.session.add(template)
        await self.session.flush()
        return template

    async def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Template]:
        """A page of templates, oldest first."""
        stmt = select(Template)
        if status is not None:
            stmt = stmt.where(Template.status == status)
        return await paginate(self.session, stmt, Template.id, limit=limit, cursor=cursor)

    async def all(self) -> Sequence[Template]:
        """Every template (there are few), for the sync and placement."""
        return (await self.session.scalars(select(Template).order_by(Template.id))).all()

    async def bulk_update(self, changes: Sequence[Mapping[str, Any]]) -> int:
        """Update many templates by primary key, one statement per 500 rows (`db.bulk`);
        each mapping has `id`."""
        if not changes:
            return 0
        now = utcnow()
        rows = [{**c, "updated_at": now} for c in changes]
        return await update_by_id(self.session, Template, rows)

    async def count_vms(self, template_id: str) -> int:
        """How many VMs were cloned from the template (linked clones block its deletion)."""
        stmt = select(func.count()).select_from(Vm).where(Vm.template_id == template_id)
        return int(await self.session.scalar(stmt) or 0)

    async def delete(self, template_id: str) -> bool:
        """Delete the row; True if it existed."""
        result = await self.session.execute(delete(Template).where(Template.id == template_id))
        return bool(getattr(result, "rowcount", 0))
