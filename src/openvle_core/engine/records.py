"""Short DB units of work the engine steps use: checkpoints, VM field changes, changelog.

Each helper commits its own small transaction (the engine is the outermost caller of
its steps), so a crash never loses a step Proxmox already did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openvle_core.changelog.repository import Change, ChangelogRepository
from openvle_core.db.enums import ChangeSource
from openvle_core.db.models import Operation, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.logging import bind
from openvle_core.operations.repository import OperationRepository
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

TRACKED_VM_FIELDS = ("status", "node", "ipv4", "vmid")
TRACKED_TEMPLATE_FIELDS = ("status", "node", "name")


async def checkpoint(runtime: Runtime, op: Operation, **values: Any) -> None:
    """Merge `values` into the operation's `result` (its step record) and commit."""
    if values.get("vmid") is not None:
        bind(vmid=values["vmid"])  # later log lines of this operation name the VM
    async with transaction(runtime.sessions) as session:
        row = await OperationRepository(session).require(op.id)
        row.result = {**(row.result or {}), **values}
        op.result = dict(row.result)


async def add_upid(runtime: Runtime, op: Operation, upid: str) -> None:
    """Record a Proxmox task of this operation (before waiting for it)."""
    async with transaction(runtime.sessions) as session:
        row = await OperationRepository(session).require(op.id)
        await OperationRepository(session).add_upid(row, upid)
        op.upids = list(row.upids)


async def load_vm(runtime: Runtime, vm_id: str) -> Vm:
    """The VM row (VmNotFound if it is gone)."""
    async with transaction(runtime.sessions) as session:
        return await VmRepository(session).require(vm_id)


async def update_vm(runtime: Runtime, vm_id: str, **fields: Any) -> Vm:
    """Set VM columns; every changed status/node/ipv4/vmid goes to the changelog."""
    if fields.get("vmid") is not None:
        bind(vmid=fields["vmid"])
    async with transaction(runtime.sessions) as session:
        vm = await VmRepository(session).require(vm_id)
        changes = _apply(vm, "vm", vm_id, fields, TRACKED_VM_FIELDS)
        await ChangelogRepository(session).add_many(changes)
        return vm


async def update_template(runtime: Runtime, template_id: str, **fields: Any) -> Template:
    """Set template columns, with changelog entries for status/node/name."""
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).require(template_id)
        changes = _apply(template, "template", template_id, fields, TRACKED_TEMPLATE_FIELDS)
        await ChangelogRepository(session).add_many(changes)
        return template


def _apply(
    row: Vm | Template,
    entity: str,
    entity_id: str,
    fields: dict[str, Any],
    tracked: tuple[str, ...],
) -> list[Change]:
    """Set the attributes and describe the tracked ones that changed."""
    changes: list[Change] = []
    for name, value in fields.items():
        old = getattr(row, name)
        if old == value:
            continue
        setattr(row, name, value)
        if name in tracked:
            changes.append(
                Change(entity, entity_id, name, _text(old), _text(value), ChangeSource.OPERATION)
            )
    return changes


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
