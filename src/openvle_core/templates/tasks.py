"""Template operation kinds: create (convert, or derive by full clone then convert),
update (name, cores, memory, description through the config API), delete.

`template.create` records the new template row's id in the operation result; a derived
template's identity while it is being made is the operation id (its clone's tag) and,
once cloned, the evidence recorded in the journal (`derived_vmgenid`, `derived_ctime`),
checked before the conversion. The row records its guest's evidence (guests/identity.py):
an update and a delete confirm it right before they change or destroy the guest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openvle_core.db.enums import GuestIdentity, TemplateStatus
from openvle_core.db.models import Operation, Template
from openvle_core.db.session import transaction
from openvle_core.guests.cloning import CloneSpec, clone_guest
from openvle_core.guests.identity import (
    Claim,
    Evidence,
    Marks,
    confirm,
    pool_node,
    require_pool_node,
)
from openvle_core.guests.repository import VmidReservationRepository
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.operations.kinds import Kinds, KindSpec, OperationKind
from openvle_core.placement.disks import disk_mb_of, memory_mb_of, storages_of
from openvle_core.proxmox import ProxmoxClient, ProxmoxTaskFailed
from openvle_core.templates.errors import TemplateInUse
from openvle_core.templates.records import confirm_template, update_template
from openvle_core.templates.repository import TemplateRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

TEMPLATE_TIMEOUT = 600.0


async def _record(
    runtime: Runtime, op: Operation, vmid: int, node: str, claim: Claim | None
) -> str:
    """Create or refresh the template row from the config (confirmed against `claim` for
    a derived template), with its evidence; returns its id."""
    if claim is None:  # an existing VM the admin named: its evidence is what is there now
        config = await runtime.proxmox.vm_config(node, vmid)
    else:
        config = await confirm(runtime.proxmox, node, vmid, claim, "record")
    fields: dict[str, Any] = {
        "name": config.name or f"template-{vmid}",
        "node": node,
        "cores": config.cores,
        "memory_mb": memory_mb_of(config),
        "storages": ",".join(sorted(storages_of(config))),
        "disk_mb": disk_mb_of(config),
        "description": config.description,
        "status": TemplateStatus.AVAILABLE.value,
        **Evidence.of(Marks.of(config)).columns(serial=False),
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


async def _convert(proxmox: ProxmoxClient, vmid: int, claim: Claim | None) -> str:
    """Convert a pool VM to a template unless it already is one; returns its node. A
    derived template's clone is confirmed as ours first (`claim`)."""
    node = await require_pool_node(proxmox, vmid)
    if claim is None:
        config = await proxmox.vm_config(node, vmid)
    else:
        config = await confirm(proxmox, node, vmid, claim, "convert")
    if not config.template:
        await proxmox.convert_to_template(node, vmid, task_timeout=TEMPLATE_TIMEOUT)
    return node


def _derived_claim(op: Operation, name: str) -> Claim:
    steps = journal.read(op)
    evidence = Evidence(steps.derived_vmgenid, steps.derived_ctime)
    return Claim(name, evidence, uuid=op.id, template=None)


async def _derive(runtime: Runtime, op: Operation, source_id: str) -> tuple[int, Claim]:
    """Full-clone the source template (resumable); the new vmid and its claim."""
    async with transaction(runtime.sessions) as session:
        source = await TemplateRepository(session).require(source_id)
    name = str(op.params.get("name") or f"{source.name}-copy")

    async def record_vmid(vmid: int | None) -> None:
        entry = Journal(derived_vmid=vmid, derived_vmgenid=None, derived_ctime=None)
        await journal.write(runtime.sessions, op, entry)

    async def record_evidence(evidence: Evidence) -> None:
        entry = Journal(derived_vmgenid=evidence.vmgenid, derived_ctime=evidence.ctime)
        await journal.write(runtime.sessions, op, entry)

    spec = CloneSpec(
        source_vmid=source.vmid,
        name=name,
        uuid=op.id,
        full=True,
        target=None,
        vm_id=None,
        vmid=journal.read(op).derived_vmid,
        record_vmid=record_vmid,
        evidence=_derived_claim(op, name).evidence,
        record_evidence=record_evidence,
    )
    vmid = await clone_guest(runtime, op, spec)
    return vmid, _derived_claim(op, name)


async def create_template(runtime: Runtime, op: Operation) -> None:
    """Params: `source_vmid` (convert) or `from_template_id` (+ `name`: derive)."""
    claim: Claim | None = None
    if op.params.get("source_vmid") is not None:
        vmid = int(op.params["source_vmid"])
    else:
        vmid, claim = await _derive(runtime, op, str(op.params["from_template_id"]))
    node = await _convert(runtime.proxmox, vmid, claim)
    if op.params.get("name") and op.params.get("source_vmid") is not None:
        await runtime.proxmox.update_vm_config(node, vmid, {"name": op.params["name"]})
    await _record(runtime, op, vmid, node, claim)


async def update_template_operation(runtime: Runtime, op: Operation) -> None:
    """Params: any of name, cores, memory_mb, description."""
    assert op.target_id is not None
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).require(op.target_id)
    node = await require_pool_node(runtime.proxmox, template.vmid)
    config = await confirm_template(runtime, template, node, "configure")
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
    node = None
    if template.identity != GuestIdentity.FOREIGN:  # else its guest is gone already
        node = await pool_node(runtime.proxmox, template.vmid) or None
    if node is not None:
        await confirm_template(runtime, template, node, "delete")
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


KINDS: Kinds = {
    OperationKind.TEMPLATE_CREATE: KindSpec(create_template),
    OperationKind.TEMPLATE_UPDATE: KindSpec(update_template_operation),
    OperationKind.TEMPLATE_DELETE: KindSpec(delete_template),
}
