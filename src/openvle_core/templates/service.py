"""Request side of template operations; never commits, returns the queued Operation."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Operation
from openvle_core.errors import InvalidRequest
from openvle_core.names import dns_name, name_change, text_problem
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.templates.errors import TemplateInUse
from openvle_core.templates.membership import PoolView, require_pool_member
from openvle_core.templates.repository import TemplateRepository


async def request_create_template(
    session: AsyncSession,
    *,
    source_vmid: int | None = None,
    from_template_id: str | None = None,
    name: str | None = None,
    pool_view: PoolView | None = None,
) -> Operation:
    """Convert pool VM `source_vmid`, or derive from `from_template_id` (full clone).

    With `pool_view` (the API always gives it), a `source_vmid` that was not in our pool
    at the last sync is refused now (404) instead of failing later in the engine.
    """
    if (source_vmid is None) == (from_template_id is None):
        raise InvalidRequest("give exactly one of source_vmid and from_template_id")
    if source_vmid is not None and pool_view is not None:
        await require_pool_member(session, pool_view, source_vmid)
    params = _named({}, name)
    repo = OperationRepository(session)
    if source_vmid is not None:
        params["source_vmid"] = source_vmid
        return await repo.create(
            OperationKind.TEMPLATE_CREATE, "vmid", str(source_vmid), params=params
        )
    source = await TemplateRepository(session).require(str(from_template_id))
    params["from_template_id"] = source.id
    return await repo.create(OperationKind.TEMPLATE_CREATE, "template", source.id, params=params)


async def request_update_template(
    session: AsyncSession,
    template_id: str,
    *,
    name: str | None = None,
    cores: int | None = None,
    memory_mb: int | None = None,
    description: str | None = None,
) -> Operation:
    """Stage a config change of the template (a name made DNS-safe carries a warning)."""
    await TemplateRepository(session).require(template_id)
    problem = text_problem(description or "", multiline=True)
    if problem:
        raise InvalidRequest(f"description {problem}", field="description")
    values: dict[str, object] = {
        "cores": cores,
        "memory_mb": memory_mb,
        "description": description,
    }
    params = _named(values, name)
    if all(v is None for v in params.values()):
        raise InvalidRequest("nothing to update")
    return await OperationRepository(session).create(
        OperationKind.TEMPLATE_UPDATE, "template", template_id, params=params
    )


def _named(params: dict[str, object], name: str | None) -> dict[str, object]:
    """`params` with the DNS-safe `name`, and a warning when it differs from the given one."""
    used = dns_name(name) if name else None
    renamed = name_change(name, used) if name and used else None
    return {**params, "name": used, **({"warnings": [renamed]} if renamed else {})}


async def request_delete_template(session: AsyncSession, template_id: str) -> Operation:
    """Stage the deletion; refused while VMs (linked clones) still use the template."""
    template = await TemplateRepository(session).require(template_id)
    users = await TemplateRepository(session).count_vms(template_id)
    if users:
        raise TemplateInUse(f"template {template.name} is still used by {users} VMs")
    return await OperationRepository(session).create(
        OperationKind.TEMPLATE_DELETE, "template", template_id
    )
