"""Operation kind `vm.migrate`: move a VM to another node, online or offline.

The client checks PVE's preconditions first (running without online, local disks,
blocked targets) and raises `MigrationBlocked` with the reason; HA-managed VMs are
followed until they really are on the target. A re-run finds the VM already there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Operation
from openvle_core.engine.identity import confirm, require_pool_node, require_vmid
from openvle_core.engine.power import db_status, refresh_status
from openvle_core.engine.records import checkpoint, load_vm, update_vm
from openvle_core.operations.kinds import operation_kind

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

MIGRATE_TIMEOUT = 3600.0


@operation_kind("vm.migrate", on_failure=refresh_status)
async def migrate_operation(runtime: Runtime, op: Operation) -> None:
    """Params: `target_node`, `online`, `with_local_disks`."""
    assert op.target_id is not None
    vm = await load_vm(runtime, op.target_id)
    require_vmid(vm)
    assert vm.vmid is not None
    target = str(op.params["target_node"])
    node = await require_pool_node(runtime.proxmox, vm.vmid)
    if node != target:
        await confirm(runtime.proxmox, node, vm.vmid, uuid=vm.id, name=vm.name)
        await update_vm(runtime, vm.id, status=VmStatus.MIGRATING.value)
        await runtime.proxmox.migrate_vm(
            node,
            vm.vmid,
            target,
            online=bool(op.params.get("online", False)),
            with_local_disks=bool(op.params.get("with_local_disks", False)),
            task_timeout=MIGRATE_TIMEOUT,
        )
    status = db_status(await runtime.proxmox.vm_status(target, vm.vmid))
    await update_vm(runtime, vm.id, node=target, status=status.value)
    await checkpoint(runtime, op, node=target, previous_node=node)
