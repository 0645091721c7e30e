"""Capacity-aware placement in a real deploy (simulator over TLS): a node without memory
is passed over where the seed's CPU rule alone would have chosen it; no node with room
fails each clone with `no_capacity`; the schedule does not start an event that does not
fit, says why on the event, and starts it once it fits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from openvle_core.db.models import Node
from openvle_core.db.session import transaction
from openvle_core.events.schedule import run_schedule
from openvle_core.metrics import REGISTRY
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.events.kit import DEBIAN, MakeRuntime, event_row, event_vms, make_event, run
from tests.vms.kit import wait_op

GIB = 1 << 30


def squeeze(sim: Simulator, name: str, free_gib: float) -> None:
    """Leave `free_gib` of memory free on the simulated node."""
    node = sim.cluster.nodes[name]
    node.maxmem = int((node.mem or node.mem_base) + free_gib * GIB)


async def test_a_node_without_memory_is_passed_over(runtime: Runtime, sim: Simulator) -> None:
    squeeze(sim, "pve1", 1.0)  # the least loaded CPU: the seed's rule alone would pick it
    event_id = await make_event(runtime, "mem1", 4, (DEBIAN,))  # 2 GiB each, on ceph
    op = await run(runtime, "deploy", event_id)
    assert op.state == "succeeded", op.error_message
    nodes = {vm.node for vm in await event_vms(runtime, event_id)}
    assert "pve1" not in nodes
    assert nodes <= {"pve2", "pve3"}


async def test_without_the_memory_filter_the_start_fails_as_kvm_does(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    """The failure the filter prevents: with an overcommit so high that memory never stops
    a node, the clone lands on the squeezed node and its start fails there."""
    squeeze(sim, "pve1", 1.0)
    async with make_runtime(proxmox={"memory_overcommit": 10.0}) as runtime:
        event_id = await make_event(runtime, "mem0", 1, (DEBIAN,))
        op = await run(runtime, "deploy", event_id)
    assert op.state == "failed"
    assert "start failed: QEMU exited with code 1" in (op.error_message or "")
    [vm] = await event_vms(runtime, event_id)
    assert vm.node == "pve1"


async def test_no_node_with_room_fails_each_clone_with_no_capacity(
    runtime: Runtime, sim: Simulator
) -> None:
    for name in ("pve1", "pve2", "pve3"):
        squeeze(sim, name, 0.5)
    refused = REGISTRY.get_sample_value("openvle_placements_refused_total") or 0.0
    event_id = await make_event(runtime, "mem2", 2, (DEBIAN,))
    op = await run(runtime, "deploy", event_id)
    assert op.state == "failed"
    assert "NoCapacity" in (op.error_message or "")
    for node in ("pve1", "pve2", "pve3"):  # what each lacked (free figures move a little)
        pattern = rf"{node}: memory: [\d,]+ MiB free x 1.5 overcommit < 2,048 MiB"
        assert re.search(pattern, op.error_message or ""), op.error_message
    assert all(vm.vmid is None for vm in await event_vms(runtime, event_id))  # nothing cloned
    after = REGISTRY.get_sample_value("openvle_placements_refused_total") or 0.0
    assert after > refused


async def _nodes(runtime: Runtime, free_gib: int) -> None:
    """What the last sync saw, as node rows: three online nodes with `free_gib` free."""
    async with transaction(runtime.sessions) as session:
        await session.execute(delete(Node))
        session.add_all(
            Node(
                name=n,
                status="online",
                cpu=0.2,
                maxcpu=32,
                mem=8 * GIB,
                maxmem=(8 + free_gib) * GIB,
            )
            for n in ("pve1", "pve2", "pve3")
        )


async def test_the_schedule_holds_an_event_that_does_not_fit_and_says_why(
    runtime: Runtime,
) -> None:
    await _nodes(runtime, free_gib=1)  # 1 GiB x 1.5 < 2 GiB: no VM fits anywhere
    now = datetime.now(UTC)
    event_id = await make_event(runtime, "mem3", 2, (DEBIAN,), starts_at=now - timedelta(minutes=1))
    before = REGISTRY.get_sample_value("openvle_event_deploys_refused_total") or 0.0

    tick = await run_schedule(runtime)

    assert list(tick.refused) == [event_id]
    assert tick.deploys == {}
    event = await event_row(runtime, event_id)
    assert event.status == "scheduled"
    assert event.status_reason is not None
    assert "2 VM(s) of debian-12-template fit on no node" in event.status_reason
    assert (REGISTRY.get_sample_value("openvle_event_deploys_refused_total") or 0) > before

    await _nodes(runtime, free_gib=64)  # room again: the next tick deploys it
    tick = await run_schedule(runtime)
    assert list(tick.deploys) == [event_id]
    assert (await wait_op(runtime, tick.deploys[event_id], timeout=60)).state == "succeeded"
    event = await event_row(runtime, event_id)
    assert (event.status, event.status_reason) == ("deployed", None)
