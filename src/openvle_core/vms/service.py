"""Request side of VM operations: validate, stage the rows, return the queued Operation.

Never commits (the caller commits, then enqueues `op.id`). A VM with an operation in
flight refuses a second one with `TargetBusy`, except that power actions queue behind a
clone or another power action (a stop after a start is what a user expects).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import TemplateStatus, VmStatus
from openvle_core.db.models import Operation, Vm
from openvle_core.db.types import new_id
from openvle_core.errors import ConflictError, InvalidRequest
from openvle_core.ipam.allocator import require_free_ip
from openvle_core.names import dns_name, name_change
from openvle_core.nodes.repository import NodeRepository
from openvle_core.operations.errors import TargetBusy
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.settings import Settings
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository

QUEUE_BEHIND = frozenset({OperationKind.VM_POWER, OperationKind.VM_CLONE})


async def request_clone(
    session: AsyncSession,
    settings: Settings,
    *,
    template_id: str,
    name: str | None = None,
    full_clone: bool | None = None,
    node: str | None = None,
    start: bool = False,
) -> Operation:
    """Stage a VM (status cloning) and its `vm.clone` operation.

    A `name` that is not a DNS name is made one (transliterated, see names.py) and the
    operation carries a warning saying so. `node` must be an online node. With
    cloud-init on, a network with no free address left refuses now (409).
    """
    template = await TemplateRepository(session).require(template_id)
    if template.status != TemplateStatus.AVAILABLE.value:
        raise ConflictError(f"template {template.name} is {template.status}, not available")
    if node is not None:
        await require_online_node(session, node, "node")
    if settings.cloudinit.enabled:
        await require_free_ip(session, settings.cloudinit)
    vm_id = new_id()
    full = settings.vms.full_clone_default if full_clone is None else full_clone
    vm = Vm(
        id=vm_id,
        name=dns_name(name or f"{template.name}-{vm_id[-6:]}"),
        template_id=template.id,
        status=VmStatus.CLONING.value,
        full_clone=full,
        node=node,
    )
    await VmRepository(session).add(vm)
    params: dict[str, object] = {
        "template_id": template.id,
        "full_clone": full,
        "node": node,
        "start": start,
    }
    renamed = name_change(name, vm.name) if name else None
    if renamed:
        params["warnings"] = [renamed]
    return await OperationRepository(session).create(
        OperationKind.VM_CLONE, "vm", vm_id, params=params
    )


async def request_power(
    session: AsyncSession, vm_id: str, action: str, *, force: bool = False
) -> Operation:
    """Stage a power action; queued behind a clone or power action already in flight."""
    if action not in ACTIONS:
        raise InvalidRequest(f"unknown power action {action!r}; one of {', '.join(ACTIONS)}")
    await VmRepository(session).require(vm_id)
    repo = OperationRepository(session)
    params = {"action": action, "force": force}
    try:
        return await repo.create(OperationKind.VM_POWER, "vm", vm_id, params=params)
    except TargetBusy:
        holder = await repo.holder("vm", vm_id)
        if holder is None or holder.kind not in QUEUE_BEHIND:
            raise
        return await repo.create(
            OperationKind.VM_POWER, "vm", vm_id, params=params, exclusive=False
        )


async def request_migrate(
    session: AsyncSession,
    vm_id: str,
    *,
    target_node: str,
    online: bool = False,
    with_local_disks: bool = False,
) -> Operation:
    """Stage a migration to `target_node` (an online node of the cluster)."""
    vm = await VmRepository(session).require(vm_id)
    await require_online_node(session, target_node, "target_node")
    if vm.vmid is None:
        raise ConflictError(f"VM {vm.name} has not been cloned yet")
    if vm.node == target_node:
        raise ConflictError(f"VM {vm.name} is already on {target_node}")
    params = {"target_node": target_node, "online": online, "with_local_disks": with_local_disks}
    return await OperationRepository(session).create(
        OperationKind.VM_MIGRATE, "vm", vm_id, params=params
    )


async def require_online_node(session: AsyncSession, name: str, field: str) -> None:
    """InvalidRequest naming `field` unless `name` is a node the sync last saw online."""
    online = await NodeRepository(session).online_names()
    if name not in online:
        listed = ", ".join(online) or "none known yet (no sync has run)"
        raise InvalidRequest(f"{field} {name!r} is not an online node; online: {listed}", field)


async def request_delete(session: AsyncSession, vm_id: str) -> Operation:
    """Stage the deletion of a VM (on Proxmox and in the DB)."""
    await VmRepository(session).require(vm_id)
    return await OperationRepository(session).create(OperationKind.VM_DELETE, "vm", vm_id)


ACTIONS = ("start", "stop", "shutdown", "restart", "reset", "pause", "resume")
