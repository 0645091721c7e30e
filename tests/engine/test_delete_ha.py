"""Deleting an HA-managed, running VM: the HA resource goes first (so the stop is a plain
`qmstop`, not an HA request the CRM would fight), then the VM is destroyed; nothing of it
is left in Proxmox's HA configuration."""

from __future__ import annotations

from openvle_core.engine.ha import ha_add_vm
from openvle_core.runtime import Runtime
from openvle_core.vms.service import request_delete, request_power
from openvle_pvesim import Simulator
from tests.engine.kit import clone, get_vm, run


def task_kinds(sim: Simulator, vmid: int) -> list[str]:
    """The types of the simulator's tasks on `vmid`, in start order."""
    return [t.type for t in sim.cluster.tasks.tasks.values() if t.id == str(vmid)]


async def test_delete_of_an_ha_managed_running_vm(runtime: Runtime, sim: Simulator) -> None:
    vm = await clone(runtime)
    assert vm.vmid is not None
    assert await ha_add_vm(runtime, vm.id)
    started = await run(runtime, lambda s: request_power(s, vm.id, "start"))
    assert started.state == "succeeded", started.error_message
    assert sim.cluster.vms[vm.vmid].running
    before = task_kinds(sim, vm.vmid)
    deleted = await run(runtime, lambda s: request_delete(s, vm.id))
    assert deleted.state == "succeeded", deleted.error_message
    assert task_kinds(sim, vm.vmid)[len(before) :] == ["qmstop", "qmdestroy"]
    assert vm.vmid not in sim.cluster.vms
    assert vm.vmid not in sim.cluster.ha
    assert f"vm:{vm.vmid}" not in {
        member
        for rule in sim.cluster.ha_rules.values()
        for member in str(rule.get("resources", "")).split(",")
    }
    assert await get_vm(runtime, vm.id) is None
