"""Template operation kinds: create (convert, or derive by full clone then convert),
update (name, cores, memory, description through the config API), delete.

`template.create` records the new template row's id in the operation result; a derived
template's identity while it is being made is the operation id (its clone's name is
the requested name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openvle_core.db.enums import TemplateStatus
from openvle_core.db.models import Operation, Template
from openvle_core.db.session import transaction
from openvle_core.guests.cloning import CloneSpec, clone_guest
from openvle_core.guests.identity import require_pool_node
from openvle_core.guests.repository import VmidReservationRepository
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.operations.kinds import Kinds, KindSpec, OperationKind
from openvle_core.placement.disks import disk_mb_of, memory_mb_of, storages_of
from openvle_core.proxmox import ProxmoxClient, ProxmoxTaskFailed
from openvle_core.templates.errors import TemplateInUse
from openvle_core.templates.records import update_template
from openvle_core.templates.repository import TemplateRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

TEMPLATE_TIMEOUT = 600.0


async def _record(runtime: Runtime, op: Operation, vmid: int, node: str) -> str:
    """Create or refresh the template row from the config; returns its id."""
    config = await runtime.proxmox.vm_config(node, vmid)
    fields: dict[str, Any] = {
        "name": config.name or f"template-{vmid}",
        "node": node,
        "cores": config.cores,
        "memory_mb": memory_mb_of(config),
        "storages": ",".join(sorted(storages_of(config))),
        "disk_mb": disk_mb_of(config),
        "description": config.description,
        "status": TemplateStatus.AVAILABLE.value,
    }
    async with transaction(runtime.sessions) as session:
        repo = TemplateRepository(session)
        row = await repo.get_by_vmid(vmid)
        if row is None:
            row = await repo.add(Template(vmid=vmid, **fields))
        else:
            for key, value in fields.items():
                setattr(row, key, value)
        await VmidReservationRepository(session).release(vmid)
        template_id = row.id
    await journal.write(
        runtime.sessions, op, Journal(template_id=template_id, vmid=vmid, node=node)
    )
    return template_id


async def _convert(proxmox: ProxmoxClient, vmid: int) -> str:
    """Convert a pool VM to a template unless it already is one; returns its node."""
    node = await require_pool_node(proxmox, vmid)
    if not (await proxmox.vm_config(node, vmid)).template:
        await proxmox.convert_to_template(node, vmid, task_timeout=TEMPLATE_TIMEOUT)
    return node


async def _derive(runtime: Runtime, op: Operation, source_id: str) -> int:
    """Full-clone the source template (resumable); returns the new vmid."""
    async with transaction(runtime.sessions) as session:
        source = await TemplateRepository(session).require(source_id)
    name = str(op.params.get("name") or f"{source.name}-copy")

    async def record_vmid(vmid: int | None) -> None:
        await journal.write(runtime.sessions, op, Journal(derived_vmid=vmid))

    current = journal.read(op).derived_vmid
    spec = CloneSpec(source.vmid, name, op.id, True, None, None, current, record_vmid)
    return await clone_guest(runtime, op, spec)


async def create_template(runtime: Runtime, op: Operation) -> None:
    """Params: `source_vmid` (convert) or `from_template_id` (+ `name`: derive)."""
    if op.params.get("source_vmid") is not None:
        vmid = int(op.params["source_vmid"])
    else:
        vmid = await _derive(runtime, op, str(op.params["from_template_id"]))
    node = await _convert(runtime.proxmox, vmid)
    if op.params.get("name") and op.params.get("source_vmid") is not None:
        await runtime.proxmox.update_vm_config(node, vmid, {"name": op.params["name"]})
    await _record(runtime, op, vmid, node)


async def update_template_operation(runtime: Runtime, op: Operation) -> None:
    """Params: any of name, cores, memory_mb, description."""
    assert op.target_id is not None
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).require(op.target_id)
    node = await require_pool_node(runtime.proxmox, template.vmid)
    config = await runtime.proxmox.vm_config(node, template.vmid)
    pairs = [("name", "name"), ("cores", "cores"), ("memory", "memory_mb")]
    pairs.append(("description", "description"))
    options = {key: op.params[p] for key, p in pairs if op.params.get(p) is not None}
    if options:
        await runtime.proxmox.update_vm_config(node, template.vmid, options, digest=config.digest)
    fields = {
        k: op.params[k]
        for k in ("name", "cores", "memory_mb", "description")
        if op.params.get(k) is not None
    }
    await update_template(runtime.sessions, template.id, node=node, **fields)


async def delete_template(runtime: Runtime, op: Operation) -> None:
    """Destroy the template (PVE refuses while linked clones use it) and its row."""
    assert op.target_id is not None
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).get(op.target_id)
    if template is None:
        return
    node = await _pool_node_or_none(runtime.proxmox, template.vmid)
    if node is not None:
        await update_template(runtime.sessions, template.id, status=TemplateStatus.DELETING.value)
        try:
            await runtime.proxmox.delete_vm(node, template.vmid, purge=True)
        except ProxmoxTaskFailed as exc:
            if "still in use" in exc.exitstatus:
                await update_template(
                    runtime.sessions, template.id, status=TemplateStatus.AVAILABLE.value
                )
                raise TemplateInUse(
                    f"template {template.name} is still used by linked clones"
                ) from exc
            raise
    async with transaction(runtime.sessions) as session:
        await TemplateRepository(session).delete(template.id)


async def _pool_node_or_none(proxmox: ProxmoxClient, vmid: int) -> str | None:
    from openvle_core.guests.identity import pool_node

    return await pool_node(proxmox, vmid) or None


KINDS: Kinds = {
    OperationKind.TEMPLATE_CREATE: KindSpec(create_template),
    OperationKind.TEMPLATE_UPDATE: KindSpec(update_template_operation),
    OperationKind.TEMPLATE_DELETE: KindSpec(delete_template),
}
