"""Every call that changes or destroys a guest re-checks its identity right before it.

For each action: our VM's vmid is taken over by a colleague's VM that even has our name;
the action fails with `IdentityMismatch`, the row stays exactly as it was, the colleague's
VM is untouched, and the refusal is counted for that action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Operation, Vm
from openvle_core.metrics import REGISTRY
from openvle_core.runtime import Runtime
from openvle_core.vms.service import request_delete, request_migrate, request_power
from openvle_pvesim import Simulator
from tests.support.colleague import Colleague
from tests.vms.conftest import SETUPS, Setup
from tests.vms.kit import add_nodes, clone, get_vm, run
from tests.vms.test_identity import take_over


@pytest.fixture
def setup() -> Setup:
    """The embedded default only: the rule is the same on every backend (test_identity
    runs on all three)."""
    return SETUPS["inprocess-sqlite-9.1"]


Request = Callable[[AsyncSession], Awaitable[Operation]]
ACTIONS: dict[str, Callable[[str], Request]] = {
    "start": lambda vm_id: lambda s: request_power(s, vm_id, "start"),
    "stop": lambda vm_id: lambda s: request_power(s, vm_id, "stop"),
    "shutdown": lambda vm_id: lambda s: request_power(s, vm_id, "shutdown", force=True),
    "restart": lambda vm_id: lambda s: request_power(s, vm_id, "restart"),
    "reset": lambda vm_id: lambda s: request_power(s, vm_id, "reset"),
    "pause": lambda vm_id: lambda s: request_power(s, vm_id, "pause"),
    "migrate": lambda vm_id: lambda s: request_migrate(s, vm_id, target_node="pve3"),
    "delete": lambda vm_id: lambda s: request_delete(s, vm_id),
}


# The call a refusal is counted for: a running VM's delete stops it first.
STEP = {"delete": "stop"}


def columns(vm: Vm) -> dict[str, Any]:
    return {c.key: getattr(vm, c.key) for c in Vm.__table__.columns}


def refusals(action: str) -> float:
    labels = {"action": action}
    return REGISTRY.get_sample_value("openvle_identity_refusals_total", labels) or 0.0


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_the_action_is_refused_and_nothing_is_written(
    runtime: Runtime, sim: Simulator, action: str
) -> None:
    await add_nodes(runtime, sim)  # a migration names a node the sync saw online
    vm = await clone(runtime, start=action != "start")
    assert vm.vmid is not None
    assert vm.node == "pve1"
    foreign = await take_over(sim, vm.vmid, vm.name)
    if action == "start":
        sim.cluster.vms[vm.vmid].running = False
    label = STEP.get(action, action)
    before, counted = columns(vm), refusals(label)

    op = await run(runtime, ACTIONS[action](vm.id))

    assert (op.state, op.error_type) == ("failed", "IdentityMismatch")
    assert f"VM {vm.vmid} on pve1: it is not OpenVLE VM {vm.id}" in (op.error_message or "")
    after = await get_vm(runtime, vm.id)
    assert after is not None
    assert columns(after) == before
    guest = sim.cluster.vms[vm.vmid]
    assert (guest.config, guest.node, guest.running) == (foreign, "pve1", action != "start")
    assert refusals(label) == counted + 1


async def test_ha_removal_is_refused_too(runtime: Runtime, sim: Simulator) -> None:
    """The colleague made their VM an HA resource: our delete does not remove it."""
    vm = await clone(runtime, start=True)
    assert vm.vmid is not None
    await take_over(sim, vm.vmid, vm.name)
    async with Colleague(sim) as colleague:
        await colleague.call("POST", "/cluster/ha/resources", sid=f"vm:{vm.vmid}")
    counted = refusals("ha_remove")

    op = await run(runtime, lambda s: request_delete(s, vm.id))

    assert (op.state, op.error_type) == ("failed", "IdentityMismatch")
    assert "refusing to remove from HA" in (op.error_message or "")
    assert vm.vmid in sim.cluster.ha
    assert refusals("ha_remove") == counted + 1
