"""The VM operation kinds: clone, power, migrate, delete.

Each handler checks Proxmox before every step and records it (`operations.journal`), so a
run after a crash continues where the last one stopped; a failure leaves the VM row with
its real state (`refresh_status`) or, for a clone, `error` (`clone_failed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Operation
from openvle_core.guests.identity import require_pool_node, require_vmid
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.operations.kinds import Kinds, KindSpec, OperationKind
from openvle_core.vms.delete import delete_vm
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.power import db_status, power_vm, refresh_status
from openvle_core.vms.provision import clone_failed, clone_vm
from openvle_core.vms.records import load_vm, update_vm

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime


async def power_operation(runtime: Runtime, op: Operation) -> None:
    """Operation kind `vm.power`: params `action` (and `force` for shutdown)."""
    assert op.target_id is not None
    await power_vm(runtime, op, op.target_id, str(op.params["action"]))


MIGRATE_TIMEOUT = 3600.0


async def migrate_operation(runtime: Runtime, op: Operation) -> None:
    """Params: `target_node`, `online`, `with_local_disks`."""
    assert op.target_id is not None
    vm = await load_vm(runtime.sessions, op.target_id)
    require_vmid(vm)
    assert vm.vmid is not None
    target = str(op.params["target_node"])
    node = await require_pool_node(runtime.proxmox, vm.vmid)
    if node != target:
        await confirm_vm(runtime, vm, node, "migrate")
        await update_vm(runtime.sessions, vm.id, status=VmStatus.MIGRATING.value)
        await runtime.proxmox.migrate_vm(
            node,
            vm.vmid,
            target,
            online=bool(op.params.get("online", False)),
            with_local_disks=bool(op.params.get("with_local_disks", False)),
            task_timeout=MIGRATE_TIMEOUT,
        )
    status = db_status(await runtime.proxmox.vm_status(target, vm.vmid))
    await confirm_vm(runtime, vm, target, "record")
    await update_vm(runtime.sessions, vm.id, node=target, status=status.value)
    await journal.write(runtime.sessions, op, Journal(node=target, previous_node=node))


KINDS: Kinds = {
    OperationKind.VM_CLONE: KindSpec(clone_vm, on_failure=clone_failed),
    OperationKind.VM_POWER: KindSpec(power_operation, on_failure=refresh_status),
    OperationKind.VM_MIGRATE: KindSpec(migrate_operation, on_failure=refresh_status),
    OperationKind.VM_DELETE: KindSpec(delete_vm, on_failure=refresh_status),
}
