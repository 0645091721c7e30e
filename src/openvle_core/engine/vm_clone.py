"""Operation kind `vm.clone`: a template becomes a VM in our pool, configured, maybe started.

Steps, each checked against Proxmox and recorded before the next: cloud-init address
(first, so an exhausted network fails before anything is cloned), node placement, the
clone itself (`cloning.clone_guest`), the one config update, the final status, the start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.engine import vmids
from openvle_core.engine.cloning import CloneSpec, clone_guest
from openvle_core.engine.configure import allocate_address, configure_clone
from openvle_core.engine.identity import pool_node, require_pool_node
from openvle_core.engine.placing import place_clone
from openvle_core.engine.power import db_status, power_vm
from openvle_core.engine.records import checkpoint, load_vm, update_vm
from openvle_core.operations.kinds import operation_kind
from openvle_core.templates.repository import TemplateRepository

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def _reserve_ip(runtime: Runtime, vm_id: str) -> None:
    """Cloud-init on: claim the VM's address before cloning (idempotent)."""
    if runtime.settings.cloudinit.enabled:
        address = await allocate_address(runtime, vm_id)
        await update_vm(runtime, vm_id, ipv4=str(address))


async def _clone(runtime: Runtime, op: Operation, vm_id: str) -> None:
    """Place and clone (skipped if an earlier run recorded it done)."""
    vm = await load_vm(runtime, vm_id)
    assert vm.template_id is not None
    async with transaction(runtime.sessions) as session:
        template = await TemplateRepository(session).require(vm.template_id)
    template_node = await require_pool_node(runtime.proxmox, template.vmid)
    node = vm.node
    if node is None:
        config = await runtime.proxmox.vm_config(template_node, template.vmid)
        node = await place_clone(runtime, vm_id, template_node, config)
        await update_vm(runtime, vm_id, node=node)

    async def record_vmid(vmid: int | None) -> None:
        await update_vm(runtime, vm_id, vmid=vmid)

    spec = CloneSpec(
        template.vmid, vm.name, vm.id, vm.full_clone, node, vm.id, vm.vmid, record_vmid
    )
    await clone_guest(runtime, op, spec)
    await checkpoint(runtime, op, cloned=True)


async def clone_failed(runtime: Runtime, op: Operation, exc: BaseException) -> None:
    """A clone that failed for good leaves the VM row in `error` (delete cleans it up);
    a vmid that holds nothing of ours in the pool is released."""
    if op.target_id is None:
        return
    vm = await load_vm(runtime, op.target_id)
    if vm.vmid is not None and await pool_node(runtime.proxmox, vm.vmid) is None:
        await vmids.release(runtime, vm.vmid)
        await update_vm(runtime, vm.id, vmid=None)
    await update_vm(runtime, vm.id, status=VmStatus.ERROR.value)


@operation_kind("vm.clone", on_failure=clone_failed)
async def clone_operation(runtime: Runtime, op: Operation) -> None:
    """Operation kind `vm.clone` (target: the VM row made by `request_clone`)."""
    assert op.target_id is not None
    vm_id = op.target_id
    await _reserve_ip(runtime, vm_id)
    if not (op.result or {}).get("cloned"):
        await _clone(runtime, op, vm_id)
    vm = await load_vm(runtime, vm_id)
    assert vm.vmid is not None
    node = await require_pool_node(runtime.proxmox, vm.vmid)
    if not (op.result or {}).get("configured"):
        await configure_clone(runtime, vm, node)
        await checkpoint(runtime, op, configured=True)
    status = db_status(await runtime.proxmox.vm_status(node, vm.vmid))
    await update_vm(runtime, vm_id, node=node, status=status.value)
    await checkpoint(runtime, op, vmid=vm.vmid, node=node)
    if op.params.get("start"):
        await power_vm(runtime, op, vm_id, "start")
