"""Issue 14, part 1, as reported: a foreign VM on a reused vmid is never taken over.

An event's VM is removed by hand in Proxmox, a colleague creates a new VM in our pool
that `/cluster/nextid` hands the same vmid, and starts it. The sync must not copy the
colleague's VM into our row (it marks ours `missing` and reports theirs as unmanaged),
and neither a delete nor the event's archive may touch the colleague's VM.
"""

from __future__ import annotations

from datetime import timedelta

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import ChangelogEntry, Vm
from openvle_core.db.types import utcnow
from openvle_core.runtime import Runtime
from openvle_core.sync import SyncResult, sync_cluster
from openvle_core.vms.service import request_delete
from openvle_pvesim import Simulator
from tests.events.kit import DEBIAN, event_vms, make_event
from tests.events.kit import run as run_event
from tests.support.colleague import Colleague
from tests.vms.kit import all_rows, get_vm, run


async def deployed_vm(runtime: Runtime, sim: Simulator) -> Vm:
    event_id = await make_event(runtime, "xtake", 1, (DEBIAN,))
    op = await run_event(runtime, "deploy", event_id)
    assert op.state == "succeeded", op.error_message
    (vm,) = await event_vms(runtime, event_id)
    assert vm.vmid is not None
    return vm


async def take_over(sim: Simulator, vmid: int) -> dict[str, object]:
    """The report's steps 2 and 3: VM `vmid` removed by hand, a colleague's new VM gets
    the same id from /cluster/nextid and is started. Returns its config."""
    async with Colleague(sim) as colleague:
        await colleague.remove_vm(vmid)
        assert await colleague.next_id() == vmid  # Proxmox hands the freed id out again
        await colleague.create_vm(vmid, "teacher-golden-image", node="pve2")
        await colleague.start_vm(vmid)
    sim.cluster.tick()  # the resource lag has passed
    return dict(sim.cluster.vms[vmid].config)


async def sync_later(runtime: Runtime) -> SyncResult:
    """A sync once our operations' settle time has passed (as the periodic one would)."""
    return await sync_cluster(
        sessions=runtime.sessions,
        proxmox=runtime.proxmox,
        snapshot=runtime.snapshot,
        settings=runtime.settings,
        now=utcnow() + timedelta(minutes=1),
    )


async def test_the_sync_marks_ours_missing_and_copies_nothing_from_the_foreign_vm(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await deployed_vm(runtime, sim)
    assert vm.vmid is not None
    foreign = await take_over(sim, vm.vmid)

    result = await sync_later(runtime)

    assert result.ok, result.error
    row = await get_vm(runtime, vm.id)
    assert row is not None
    assert (row.name, row.node, row.vmid) == (vm.name, vm.node, vm.vmid)
    assert (row.status, row.identity) == (VmStatus.MISSING, "foreign")
    assert vm.vmid in result.unmanaged_vmids
    assert result.foreign == 1
    changes = {(c.field, c.new) for c in await all_rows(runtime, ChangelogEntry)}
    assert ("name", "teacher-golden-image") not in changes
    assert ("identity", "foreign") in changes
    assert sim.cluster.vms[vm.vmid].config == foreign

    deleted = await run(runtime, lambda s: request_delete(s, vm.id))

    assert deleted.state == "succeeded", deleted.error_message  # our VM was gone already
    assert await get_vm(runtime, vm.id) is None
    assert sim.cluster.vms[vm.vmid].config == foreign
    assert sim.cluster.vms[vm.vmid].running


async def test_a_delete_before_any_sync_refuses_and_leaves_both_alone(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await deployed_vm(runtime, sim)
    assert vm.vmid is not None
    foreign = await take_over(sim, vm.vmid)

    op = await run(runtime, lambda s: request_delete(s, vm.id))

    assert (op.state, op.error_type) == ("failed", "IdentityMismatch")
    assert "refusing" in (op.error_message or "")
    row = await get_vm(runtime, vm.id)
    assert row is not None
    assert (row.status, row.node, row.name) == (vm.status, vm.node, vm.name)  # untouched
    assert sim.cluster.vms[vm.vmid].config == foreign
    assert sim.cluster.vms[vm.vmid].running


async def test_the_archive_refuses_then_forgets_once_the_sync_saw_it(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await deployed_vm(runtime, sim)
    assert vm.vmid is not None
    assert vm.event_id is not None
    foreign = await take_over(sim, vm.vmid)

    archive = await run_event(runtime, "archive", vm.event_id)

    assert archive.state == "failed"
    assert "IdentityMismatch" in (archive.error_message or "")
    assert sim.cluster.vms[vm.vmid].config == foreign
    assert (await sync_later(runtime)).ok

    again = await run_event(runtime, "archive", vm.event_id)

    assert again.state == "succeeded", again.error_message
    assert await event_vms(runtime, vm.event_id) == []
    assert sim.cluster.vms[vm.vmid].config == foreign
    assert sim.cluster.vms[vm.vmid].running
