"""Power actions decided by the real state; agent IPs; HA-managed VMs; queueing behind."""

from __future__ import annotations

import pytest

from openvle_core.db.enums import VmStatus
from openvle_core.engine.ha import ha_add_vm, ha_remove_vm
from openvle_core.operations.errors import TargetBusy
from openvle_core.runtime import Runtime
from openvle_core.vms.service import request_clone, request_delete, request_power
from openvle_pvesim import Simulator
from tests.engine.kit import (
    SHARED_TEMPLATE,
    MakeRuntime,
    add_template,
    clone,
    get_vm,
    power,
    run,
    submit,
    wait_op,
)


async def test_start_reads_the_ip_through_the_agent_then_stop(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await clone(runtime, start=True)
    assert vm.status == VmStatus.RUNNING.value
    assert vm.ipv4 is not None
    assert vm.ipv4.startswith("10.20.")  # the simulated DHCP lease, not docker0 or lo
    assert sim.cluster.vms[vm.vmid or 0].running
    assert await power(runtime, vm, "stop") == "succeeded"
    assert (await get_vm(runtime, vm.id)).status == "stopped"  # type: ignore[union-attr]
    assert not sim.cluster.vms[vm.vmid or 0].running


async def test_power_actions_follow_the_real_state(runtime: Runtime, sim: Simulator) -> None:
    vm = await clone(runtime)
    assert (await power(runtime, vm, "restart")).startswith("failed: InvalidPowerState")
    assert await power(runtime, vm, "stop") == "succeeded"  # already stopped: nothing to do
    assert await power(runtime, vm, "start") == "succeeded"
    assert await power(runtime, vm, "start") == "succeeded"  # already running
    assert await power(runtime, vm, "pause") == "succeeded"
    assert (await get_vm(runtime, vm.id)).status == "paused"  # type: ignore[union-attr]
    assert await power(runtime, vm, "resume") == "succeeded"
    assert await power(runtime, vm, "reset") == "succeeded"
    assert await power(runtime, vm, "restart") == "succeeded"
    assert await power(runtime, vm, "shutdown") == "succeeded"
    assert sim.cluster.vms[vm.vmid or 0].last_shutdown == "agent"
    assert (await get_vm(runtime, vm.id)).status == "stopped"  # type: ignore[union-attr]


async def test_missing_guest_agent_is_recorded_not_a_failure(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await clone(runtime)
    sim.cluster.set_agent(vm.vmid or 0, "none")
    op = await run(runtime, lambda s: request_power(s, vm.id, "start"))
    assert op.state == "succeeded"
    assert (op.result or {})["ip_missing"] == "guest agent not configured"
    refreshed = await get_vm(runtime, vm.id)
    assert refreshed is not None
    assert (refreshed.status, refreshed.ipv4) == ("running", None)


async def test_agent_not_running_times_out_into_a_note(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    async with make_runtime(worker={"agent_ip_timeout": 1.0}) as runtime:
        vm = await clone(runtime)
        sim.cluster.set_agent(vm.vmid or 0, "stopped")
        op = await run(runtime, lambda s: request_power(s, vm.id, "start"))
        assert op.state == "succeeded"
        assert (op.result or {})["ip_missing"] == "guest agent not running"


async def test_ha_managed_vm_waits_for_the_real_state(runtime: Runtime, sim: Simulator) -> None:
    vm = await clone(runtime)
    assert await ha_add_vm(runtime, vm.id)
    assert (await get_vm(runtime, vm.id)).ha_managed  # type: ignore[union-attr]
    assert vm.vmid in sim.cluster.ha
    op = await run(runtime, lambda s: request_power(s, vm.id, "start"))
    assert op.state == "succeeded", op.error_message
    assert sim.cluster.vms[vm.vmid or 0].running  # really running, not just requested
    op = await run(runtime, lambda s: request_power(s, vm.id, "stop"))
    assert op.state == "succeeded", op.error_message
    assert not sim.cluster.vms[vm.vmid or 0].running
    deleted = await run(runtime, lambda s: request_delete(s, vm.id))
    assert deleted.state == "succeeded", deleted.error_message
    assert vm.vmid not in sim.cluster.ha
    assert vm.vmid not in sim.cluster.vms


async def test_power_requests_queue_behind_and_delete_is_refused_while_busy(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await clone(runtime)
    sim.cluster.tasks.gate.clear()  # hold Proxmox tasks so the first action stays in flight
    first = await submit(runtime, lambda s: request_power(s, vm.id, "start"))
    second = await submit(runtime, lambda s: request_power(s, vm.id, "stop"))
    assert second.lock_key is None  # queued behind the start
    try:
        with pytest.raises(TargetBusy, match=first.id):
            await submit(runtime, lambda s: request_delete(s, vm.id))
    finally:
        sim.cluster.tasks.gate.set()
    done = [await wait_op(runtime, op.id) for op in (first, second)]
    assert [op.state for op in done] == ["succeeded", "succeeded"]
    assert done[0].finished_at is not None
    assert done[1].started_at is not None
    assert done[1].started_at >= done[0].finished_at
    assert not sim.cluster.vms[vm.vmid or 0].running


async def test_start_queued_behind_a_failed_clone_fails_clearly(
    runtime: Runtime, sim: Simulator
) -> None:
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    sim.faults.add("task_fail", "qmclone", n=1)
    sim.cluster.tasks.gate.clear()
    clone_op = await submit(
        runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id)
    )
    start_op = await submit(runtime, lambda s: request_power(s, str(clone_op.target_id), "start"))
    sim.cluster.tasks.gate.set()
    assert (await wait_op(runtime, clone_op.id)).state == "failed"
    started = await wait_op(runtime, start_op.id)
    assert started.state == "failed"
    assert started.error_type == "NotCloned"
    assert "did not finish" in (started.error_message or "")


async def test_graceful_shutdown_times_out_clearly_unless_forced(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    async with make_runtime(worker={"shutdown_timeout": 5.0}) as runtime:
        vm = await clone(runtime, start=True)
        sim.cluster.set_agent(vm.vmid or 0, "stopped")  # ACPI takes 8 s here: over 5 s
        op = await run(runtime, lambda s: request_power(s, vm.id, "shutdown"))
        assert op.state == "failed"
        assert "got timeout" in (op.error_message or "")
        assert (await get_vm(runtime, vm.id)).status == "running"  # type: ignore[union-attr]
        op = await run(runtime, lambda s: request_power(s, vm.id, "shutdown", force=True))
        assert op.state == "succeeded", op.error_message
        assert not sim.cluster.vms[vm.vmid or 0].running


async def test_retries_stop_at_worker_max_retry(make_runtime: MakeRuntime, sim: Simulator) -> None:
    async with make_runtime(worker={"max_retry": 2}) as runtime:
        template_id = await add_template(runtime, *SHARED_TEMPLATE)
        sim.faults.add("lock_timeout", "qmclone")  # every clone task loses its lock
        op = await run(
            runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id)
        )
        assert op.state == "failed"
        assert op.attempts == 3
        assert op.error_type == "ProxmoxTaskFailed"
        assert (op.error_message or "").startswith("gave up after 3 attempts")


async def test_ha_helpers_are_idempotent_and_follow_the_setting(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    async with make_runtime() as runtime:
        vm = await clone(runtime)
        assert await ha_add_vm(runtime, vm.id)
        assert await ha_add_vm(runtime, vm.id)  # already there: no second POST, no error
        assert list(sim.cluster.ha) == [vm.vmid]
        assert await ha_remove_vm(runtime, vm.id)
        assert not await ha_remove_vm(runtime, vm.id)
        assert vm.vmid not in sim.cluster.ha
        assert not (await get_vm(runtime, vm.id)).ha_managed  # type: ignore[union-attr]
    async with make_runtime(vms={"ha_enabled": False}) as runtime:
        assert not await ha_add_vm(runtime, vm.id)
        assert vm.vmid not in sim.cluster.ha
