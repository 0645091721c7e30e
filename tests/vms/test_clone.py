"""Clone: placement, vmid reservation, one config update, SMBIOS identity, failures."""

from __future__ import annotations

import asyncio

from openvle_core.db.enums import ChangeSource, VmStatus
from openvle_core.db.models import ChangelogEntry, Operation, Vm, VmidReservation
from openvle_core.db.session import transaction
from openvle_core.guests.identity import clone_description
from openvle_core.guests.smbios import parse_smbios1
from openvle_core.metrics import REGISTRY
from openvle_core.runtime import Runtime
from openvle_core.vms.service import request_clone
from openvle_pvesim import Simulator
from openvle_pvesim.cluster import VM
from tests.vms.kit import (
    LOCAL_TEMPLATE,
    SHARED_TEMPLATE,
    MakeRuntime,
    add_template,
    all_rows,
    get_vm,
    pool_vms,
    run,
    submit,
    wait_op,
)


async def test_linked_clone_on_shared_storage_goes_to_least_loaded_node(
    runtime: Runtime, sim: Simulator
) -> None:
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    op = await run(
        runtime,
        lambda s: request_clone(s, runtime.settings, template_id=template_id, name="lab-01"),
    )
    assert op.state == "succeeded", op.error_message
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    assert vm.vmid is not None
    assert (vm.node, vm.status, vm.full_clone) == ("pve1", VmStatus.STOPPED.value, False)
    pve_vm = sim.cluster.vms[vm.vmid]
    assert pve_vm.name == "lab-01"
    assert "/vm-" in pve_vm.config["scsi0"]
    smbios = parse_smbios1(pve_vm.config["smbios1"])
    assert smbios["serial"] == vm.id
    assert smbios["base64"] == "1"
    assert smbios["product"] == "lab-01"
    assert smbios["manufacturer"] == "OpenVLE"
    assert smbios["version"] == template_id
    assert "uuid" in smbios
    reservations = await all_rows(runtime, VmidReservation)
    assert [(r.vmid, r.vm_id) for r in reservations] == [(vm.vmid, vm.id)]
    changes = {
        (c.field, c.new)
        for c in await all_rows(runtime, ChangelogEntry)
        if c.entity_id == vm.id and c.source == ChangeSource.OPERATION.value
    }
    assert {("vmid", str(vm.vmid)), ("node", "pve1"), ("status", "stopped")} <= changes


async def test_local_storage_clone_stays_on_template_node(runtime: Runtime, sim: Simulator) -> None:
    template_id = await add_template(runtime, *LOCAL_TEMPLATE)
    op = await run(
        runtime,
        lambda s: request_clone(s, runtime.settings, template_id=template_id, full_clone=True),
    )
    assert op.state == "succeeded", op.error_message
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    assert vm.node == "pve2"
    assert vm.full_clone
    assert sim.cluster.vms[vm.vmid or 0].node == "pve2"


async def test_nextid_collision_moves_to_the_next_id(runtime: Runtime, sim: Simulator) -> None:
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    sim.faults.add("nextid_collision", n=1)
    op = await run(
        runtime,
        lambda s: request_clone(s, runtime.settings, template_id=template_id, name="after-race"),
    )
    assert op.state == "succeeded", op.error_message
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    assert vm.vmid is not None
    others = [v for v in sim.cluster.vms.values() if v.name.startswith("other-client-")]
    assert len(others) == 1
    assert others[0].vmid != vm.vmid
    assert vm.vmid > others[0].vmid
    assert (op.result or {})["collisions"] == [others[0].vmid]
    assert [r.vmid for r in await all_rows(runtime, VmidReservation)] == [vm.vmid]
    assert pool_vms(sim)[vm.vmid] == "after-race"


async def test_failed_clone_task_fails_at_once_with_the_reason(
    runtime: Runtime, sim: Simulator
) -> None:
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    before = set(pool_vms(sim))
    sim.faults.add("task_fail", "qmclone", n=1)
    op = await run(runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id))
    assert op.state == "failed"
    assert op.attempts == 1
    assert op.error_type == "ProxmoxTaskFailed"
    assert "qemu-img convert" in (op.error_message or "")
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    assert vm.status == VmStatus.ERROR.value
    assert vm.vmid is None  # nothing of ours there: the vmid went back
    assert await all_rows(runtime, VmidReservation) == []
    assert set(pool_vms(sim)) == before  # nothing half-made left behind


async def test_lock_timeout_is_retried(runtime: Runtime, sim: Simulator) -> None:
    template_id = await add_template(runtime, *LOCAL_TEMPLATE)
    sim.faults.add("lock_timeout", "qmclone", n=2)
    op = await run(
        runtime,
        lambda s: request_clone(s, runtime.settings, template_id=template_id, full_clone=True),
    )
    assert op.state == "succeeded", op.error_message
    assert op.attempts == 3  # two lock timeouts, then the clone
    assert len([u for u in op.upids if ":qmclone:" in u]) == 3


async def test_parallel_full_clones_survive_storage_lock_timeouts(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    """Eight full clones to one local-lvm: the storage lock (10 s wait, 3 s per allocation)
    times some of them out, as on real PVE; those are retried and all finish. (The clone
    caps would run them one at a time: here they admit all eight.)"""
    caps = {"full_clones_per_storage": 8, "clones_per_node": 8, "clones_per_storage": 8}
    async with make_runtime(worker=caps) as runtime:
        template_id = await add_template(runtime, *LOCAL_TEMPLATE)
        sim.cluster.tasks.gate.clear()  # start all eight tasks before any allocates
        submitted = [
            await submit(
                runtime,
                lambda s: request_clone(
                    s, runtime.settings, template_id=template_id, full_clone=True
                ),
            )
            for _ in range(8)
        ]
        await until_clones_started(runtime, submitted, 8)
        sim.cluster.tasks.gate.set()
        ops = [await wait_op(runtime, op.id) for op in submitted]
        assert [op.state for op in ops] == ["succeeded"] * 8, [op.error_message for op in ops]
        assert sum(op.attempts for op in ops) > 8  # some lost the lock race and retried
        vmids = {(await get_vm(runtime, str(op.target_id))).vmid for op in ops}  # type: ignore[union-attr]
        assert len(vmids) == 8
        assert vmids <= set(pool_vms(sim))


async def until_clones_started(runtime: Runtime, ops: list[Operation], count: int) -> None:
    """Wait until `count` of the operations recorded their clone task's UPID."""
    for _ in range(1000):
        rows = [await wait_row(runtime, op.id) for op in ops]
        if sum(1 for r in rows if (r.result or {}).get("clone_upid")) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the clones did not start")


async def wait_row(runtime: Runtime, op_id: str) -> Operation:
    async with transaction(runtime.sessions) as session:
        row = await session.get(Operation, op_id)
        assert row is not None
        return row


async def test_synchronous_collision_leaves_the_other_vm_alone(
    runtime: Runtime, sim: Simulator
) -> None:
    """A vmid taken on the template's node is refused before the task exists (PVE's
    `config file already exists`); the reservation moves on and VM 200 stays as it was."""
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    async with transaction(runtime.sessions) as session:
        op = await request_clone(session, runtime.settings, template_id=template_id)
        vm = await session.get(Vm, str(op.target_id))
        assert vm is not None
        vm.vmid, vm.node = 200, "pve1"  # as if 200 had been reserved before a crash
    before = dict(sim.cluster.vms[200].config)
    await runtime.queue.enqueue(op.id)
    done = await wait_op(runtime, op.id)
    assert done.state == "succeeded", done.error_message
    cloned = await get_vm(runtime, vm.id)
    assert cloned is not None
    assert cloned.vmid not in {None, 200}
    assert (done.result or {})["collisions"] == [200]
    assert sim.cluster.vms[200].config == before
    assert sim.cluster.pool_of(200) == "Other-Team"


async def test_placement_counts_clones_still_in_flight(runtime: Runtime, sim: Simulator) -> None:
    """Twelve 2-core clones already placed on pve1 (not yet in PVE's stats) make pve3,
    the next least loaded node, the better choice."""
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    async with transaction(runtime.sessions) as session:
        session.add_all(
            Vm(name=f"inflight-{n}", node="pve1", status="cloning", template_id=template_id)
            for n in range(12)
        )
    op = await run(runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id))
    assert op.state == "succeeded", op.error_message
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    assert vm.node == "pve3"


async def test_failures_are_counted_in_metrics(runtime: Runtime, sim: Simulator) -> None:
    labels = {"kind": "vm.clone", "state": "failed"}
    before = REGISTRY.get_sample_value("openvle_operations_total", labels) or 0.0
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    sim.faults.add("task_fail", "qmclone", n=1)
    op = await run(runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id))
    assert op.state == "failed"
    assert REGISTRY.get_sample_value("openvle_operations_total", labels) == before + 1


async def test_a_vanished_clone_task_is_checked_and_redone(
    runtime: Runtime, sim: Simulator
) -> None:
    """A recorded UPID that Proxmox no longer knows: check the pool, then clone again."""
    ghost = "UPID:pve1:00001234:00005678:6750A0B0:qmclone:9000:openvle@pve!ci:"
    op, vm = await stage_interrupted_clone(runtime, 4000, {"clone_upid": ghost, "clone_vmid": 4000})
    await runtime.queue.enqueue(op.id)
    done = await wait_op(runtime, op.id)
    assert done.state == "succeeded", done.error_message
    assert done.attempts == 2
    assert pool_vms(sim)[4000] == vm.name


async def test_a_clone_started_just_before_a_crash_is_not_made_twice(
    runtime: Runtime, sim: Simulator
) -> None:
    """The earlier run died after Proxmox accepted the clone but before the UPID was
    recorded: the re-run's own clone collides with it, and it waits for that clone."""
    op, vm = await stage_interrupted_clone(runtime, 4100, {"clone_intent": 4100})
    sim.cluster.tasks.gate.clear()
    dead_runs = clone_description(None, vm.id)  # the dead run's request carried our tag
    await runtime.proxmox.start_clone("pve1", 9000, 4100, name=vm.name, description=dead_runs)
    await runtime.queue.enqueue(op.id)
    await until_clones_started(runtime, [op], 1)  # the re-run posted its own clone too
    sim.cluster.tasks.gate.set()
    done = await wait_op(runtime, op.id)
    assert done.state == "succeeded", done.error_message
    ours = {vmid: name for vmid, name in pool_vms(sim).items() if name == vm.name}
    assert ours == {4100: vm.name}  # exactly one clone, at the recorded vmid
    assert (done.result or {}).get("collisions") is None
    assert len(done.upids) == 1
    assert (done.result or {})["clone_upid"] is None  # ours lost the flock to the dead run's


async def test_a_lost_clone_answer_then_a_foreign_vm_on_that_vmid_moves_on_at_once(
    runtime: Runtime, sim: Simulator
) -> None:
    """The intent was recorded but no clone task of ours runs: the vmid belongs to another
    client, so the re-run does not wait for a clone of ours; it takes the next vmid."""
    op, vm = await stage_interrupted_clone(
        runtime, 4200, {"clone_intent": 4200, "clone_intent_at": 0}
    )
    foreign = VM(4200, "pve1", {"name": "someone-else", "memory": "1024", "cores": 1})
    sim.cluster.vms[4200] = foreign
    sim.cluster.set_pool(4200, "Other-Team")
    await runtime.queue.enqueue(op.id)
    done = await wait_op(runtime, op.id, timeout=30)
    assert done.state == "succeeded", done.error_message
    assert (done.result or {})["collisions"] == [4200]
    final = await get_vm(runtime, vm.id)
    assert final is not None
    assert final.vmid not in (None, 4200)
    assert pool_vms(sim)[final.vmid] == vm.name
    assert sim.cluster.vms[4200] is foreign  # the other client's VM is untouched
    assert sim.cluster.pool_of(4200) == "Other-Team"


async def stage_interrupted_clone(
    runtime: Runtime, vmid: int, result: dict[str, object]
) -> tuple[Operation, Vm]:
    """A queued clone whose earlier run reserved `vmid` on pve1 and recorded `result`
    before it died (the re-run finds that state, as after a crash)."""
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    async with transaction(runtime.sessions) as session:
        op = await request_clone(session, runtime.settings, template_id=template_id)
        vm = await session.get(Vm, str(op.target_id))
        assert vm is not None
        vm.vmid, vm.node = vmid, "pve1"
        session.add(VmidReservation(vmid=vmid, vm_id=vm.id, operation_id=op.id))
        op.result = result
    return op, vm
