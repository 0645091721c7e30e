"""Partial and total failures of a deploy, and the clone slots that keep locks free."""

from __future__ import annotations

from sqlalchemy import select

from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.engine.kit import LOCAL_TEMPLATE
from tests.events.kit import (
    DEBIAN,
    MakeRuntime,
    event_row,
    event_vms,
    make_event,
    pool_guests,
    run,
    tasks_of,
)


async def _children(runtime: Runtime, parent_id: str) -> list[Operation]:
    async with transaction(runtime.sessions) as session:
        stmt = select(Operation).where(Operation.parent_id == parent_id)
        return list((await session.scalars(stmt)).all())


async def test_a_vm_whose_clone_failed_is_retried_in_the_next_round(
    runtime: Runtime, sim: Simulator
) -> None:
    sim.faults.add("task_fail", "qmclone", n=1)
    event_id = await make_event(runtime, "retry", 3, (DEBIAN,))

    op = await run(runtime, "deploy", event_id)

    assert (op.state, op.result and op.result["failed"]) == ("succeeded", [])
    assert tasks_of(sim, "qmclone") == 4
    children = await _children(runtime, op.id)
    assert sorted(c.state for c in children) == ["failed", "succeeded", "succeeded", "succeeded"]
    assert len(pool_guests(sim)) == 3


async def test_a_deploy_that_cannot_finish_names_each_vm_and_why(
    runtime: Runtime, sim: Simulator
) -> None:
    sim.faults.add("task_fail", "qmstart")  # every start fails, every round
    event_id = await make_event(runtime, "nostart", 2, (DEBIAN,))

    op = await run(runtime, "deploy", event_id)

    assert op.state == "failed"
    assert op.error_type == "EventIncomplete"
    assert "2 VM(s) failed" in (op.error_message or "")
    assert "nostart-001-debian-12-template: ProxmoxTaskFailed" in (op.error_message or "")
    assert [f["name"] for f in (op.result or {})["failed"]] == [
        "nostart-001-debian-12-template",
        "nostart-002-debian-12-template",
    ]
    assert (await event_row(runtime, event_id)).status == "failed"

    sim.faults.clear()
    again = await run(runtime, "deploy", event_id)

    assert again.state == "succeeded"
    assert tasks_of(sim, "qmclone") == 2  # the clones of the failed run were kept
    assert {vm.status for vm in await event_vms(runtime, event_id)} == {"running"}


async def test_full_clones_to_local_storage_wait_for_their_slot(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    async with make_runtime(vms={"full_clone_default": True}) as runtime:
        event_id = await make_event(runtime, "full", 2, (LOCAL_TEMPLATE,))

        op = await run(runtime, "deploy", event_id)

        assert op.state == "succeeded"
        peaks = (op.result or {})["clone_slots_peak"]
        assert peaks["full:local-lvm:pve2"] == 1
        assert peaks["node:pve2"] == 1
        assert [c.attempts for c in await _children(runtime, op.id)] == [1, 1]
        assert {g.node for g in pool_guests(sim).values()} == {"pve2"}
