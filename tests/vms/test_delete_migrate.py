"""Delete (HA off, stop, purge, release) and migrate; refusals outside the pool or identity."""

from __future__ import annotations

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import ChangelogEntry, Vm, VmidReservation
from openvle_core.db.session import transaction
from openvle_core.runtime import Runtime
from openvle_core.vms.service import request_clone, request_delete, request_migrate
from openvle_pvesim import Simulator
from tests.vms.kit import (
    LOCAL_TEMPLATE,
    add_nodes,
    add_template,
    all_rows,
    clone,
    get_vm,
    pool_vms,
    run,
)


async def adopt(runtime: Runtime, vmid: int, name: str, status: str = "running") -> str:
    """A VM row pointing at an existing vmid (as the sync's adoption would make)."""
    async with transaction(runtime.sessions) as session:
        vm = Vm(vmid=vmid, name=name, node="pve1", status=status)
        session.add(vm)
        await session.flush()
        return vm.id


async def test_delete_running_vm_releases_everything(runtime: Runtime, sim: Simulator) -> None:
    vm = await clone(runtime, start=True)
    assert vm.vmid is not None
    op = await run(runtime, lambda s: request_delete(s, vm.id))
    assert op.state == "succeeded", op.error_message
    assert vm.vmid not in sim.cluster.vms
    assert await get_vm(runtime, vm.id) is None
    assert await all_rows(runtime, VmidReservation) == []
    entries = [
        (c.field, c.new) for c in await all_rows(runtime, ChangelogEntry) if c.entity_id == vm.id
    ]
    assert entries[-1] == ("status", "deleted")


async def test_delete_refuses_a_vm_outside_the_pool(runtime: Runtime, sim: Simulator) -> None:
    vm_id = await adopt(runtime, 200, "ot-web-01")  # belongs to the Other-Team pool
    op = await run(runtime, lambda s: request_delete(s, vm_id))
    assert op.state == "failed"
    assert op.error_type == "OutsidePool"
    assert "not in pool 'OpenVLE-VMs'" in (op.error_message or "")
    assert 200 in sim.cluster.vms
    assert await get_vm(runtime, vm_id) is not None


async def test_delete_refuses_an_unconfirmed_identity(runtime: Runtime, sim: Simulator) -> None:
    vm = await clone(runtime)
    assert vm.vmid is not None
    impostor = await adopt(runtime, vm.vmid + 500, "someone-else", status="stopped")
    async with transaction(runtime.sessions) as session:  # point the row at our clone's vmid
        row = await session.get(Vm, vm.id)
        assert row is not None
        row.vmid = None
        await session.flush()
        other = await session.get(Vm, impostor)
        assert other is not None
        other.vmid = vm.vmid
    op = await run(runtime, lambda s: request_delete(s, impostor))
    assert op.state == "failed"
    assert op.error_type == "IdentityMismatch"
    assert vm.vmid in sim.cluster.vms


async def test_delete_of_a_vm_that_never_got_cloned_only_cleans_the_db(
    runtime: Runtime, sim: Simulator
) -> None:
    vm_id = await adopt(runtime, 4242, "gone-already", status=VmStatus.MISSING.value)
    op = await run(runtime, lambda s: request_delete(s, vm_id))
    assert op.state == "succeeded", op.error_message
    assert await get_vm(runtime, vm_id) is None


async def test_migrate_offline_updates_the_node(runtime: Runtime, sim: Simulator) -> None:
    await add_nodes(runtime, sim)
    vm = await clone(runtime)
    op = await run(runtime, lambda s: request_migrate(s, vm.id, target_node="pve3"))
    assert op.state == "succeeded", op.error_message
    assert sim.cluster.vms[vm.vmid or 0].node == "pve3"
    moved = await get_vm(runtime, vm.id)
    assert moved is not None
    assert (moved.node, moved.status) == ("pve3", "stopped")
    changes = [
        (c.field, c.old, c.new)
        for c in await all_rows(runtime, ChangelogEntry)
        if c.entity_id == vm.id and c.field == "node"
    ]
    assert changes[-1] == ("node", "pve1", "pve3")


async def test_migrate_running_vm_needs_online(runtime: Runtime, sim: Simulator) -> None:
    await add_nodes(runtime, sim)
    vm = await clone(runtime, start=True)
    op = await run(runtime, lambda s: request_migrate(s, vm.id, target_node="pve2"))
    assert op.state == "failed"
    assert op.error_type == "MigrationBlocked"
    assert "online" in (op.error_message or "")
    after = await get_vm(runtime, vm.id)
    assert after is not None
    assert (after.node, after.status) == ("pve1", "running")
    op = await run(runtime, lambda s: request_migrate(s, vm.id, target_node="pve2", online=True))
    assert op.state == "succeeded", op.error_message
    assert sim.cluster.vms[vm.vmid or 0].node == "pve2"


async def test_migrate_with_local_disks_fails_with_the_reason(
    runtime: Runtime, sim: Simulator
) -> None:
    await add_nodes(runtime, sim)
    template_id = await add_template(runtime, *LOCAL_TEMPLATE)
    op = await run(
        runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id, start=True)
    )
    assert op.state == "succeeded", op.error_message
    vm_id = str(op.target_id)
    op = await run(runtime, lambda s: request_migrate(s, vm_id, target_node="pve1", online=True))
    assert op.state == "failed"
    assert op.error_type == "MigrationBlocked"
    assert "local" in (op.error_message or "")
    assert len(pool_vms(sim)) == 4  # three templates and the clone, still where it was
