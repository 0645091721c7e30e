"""A VM's identity: the evidence recorded at clone time, and the rule that uses it.

The evidence (vmgenid, `meta` ctime, our SMBIOS serial) is recorded right after the
clone, before anything else is done to the VM; it holds with SMBIOS metadata off; a name
is never evidence once it exists; a legacy row (made before evidence) is confirmed once
by the old rule and then records its evidence; a re-run after a crash recognises its own
clone by the tag its clone request wrote, never by the name.
"""

from __future__ import annotations

from typing import Any

from openvle_core.db.enums import GuestIdentity
from openvle_core.db.models import ChangelogEntry, Vm
from openvle_core.db.session import transaction
from openvle_core.guests.identity import clone_description, meta_ctime
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.runtime import Runtime
from openvle_core.vms.service import request_clone, request_power
from openvle_pvesim import Simulator
from tests.support.colleague import Colleague
from tests.vms.kit import (
    SHARED_TEMPLATE,
    MakeRuntime,
    add_template,
    all_rows,
    clone,
    get_vm,
    pool_vms,
    power,
    run,
    wait_op,
)
from tests.vms.test_clone import stage_interrupted_clone


def guest_marks(sim: Simulator, vmid: int) -> dict[str, Any]:
    config = sim.cluster.vms[vmid].config
    return {"vmgenid": config["vmgenid"], "ctime": meta_ctime(config.get("meta"))}


async def take_over(sim: Simulator, vmid: int, name: str) -> dict[str, Any]:
    """An admin removes VM `vmid`; a colleague's new VM named `name` gets the vmid, on the
    same node, and runs. Returns its config."""
    node = sim.cluster.vms[vmid].node
    async with Colleague(sim) as colleague:
        await colleague.remove_vm(vmid)
        await colleague.create_vm(vmid, name, node=node)
        await colleague.start_vm(vmid)
    return dict(sim.cluster.vms[vmid].config)


async def test_a_clone_records_its_guests_evidence(runtime: Runtime, sim: Simulator) -> None:
    vm = await clone(runtime)
    assert vm.vmid is not None
    marks = guest_marks(sim, vm.vmid)
    assert (vm.identity_vmgenid, vm.identity_ctime) == (marks["vmgenid"], marks["ctime"])
    assert vm.identity_ctime is not None  # copied from the template by the clone
    assert vm.identity_serial == vm.id  # SMBIOS metadata is on by default
    assert vm.identity == GuestIdentity.OURS
    description = sim.cluster.vms[vm.vmid].config["description"]
    assert description.splitlines()[-1] == f"openvle-clone: {vm.id}"
    changes = [
        (c.field, c.new) for c in await all_rows(runtime, ChangelogEntry) if c.entity_id == vm.id
    ]
    assert changes.index(("identity", "ours")) < changes.index(("status", "stopped"))


async def test_with_smbios_metadata_off_identity_holds_and_a_name_proves_nothing(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    async with make_runtime(vms={"smbios_metadata": False}) as runtime:
        vm = await clone(runtime, start=True)
        assert vm.vmid is not None
        assert vm.identity_serial is None
        assert "serial" not in sim.cluster.vms[vm.vmid].config["smbios1"]
        sim.cluster.vms[vm.vmid].config["name"] = "renamed-by-an-admin"  # still ours
        assert await power(runtime, vm, "stop") == "succeeded"
        foreign = await take_over(sim, vm.vmid, vm.name)  # our name, not our VM

        outcome = await power(runtime, vm, "start")

        assert outcome.startswith("failed: IdentityMismatch: refusing to start VM")
        assert "vmgenid" in outcome
        assert sim.cluster.vms[vm.vmid].config == foreign


async def test_a_legacy_row_is_confirmed_once_by_the_old_rule_then_by_evidence(
    runtime: Runtime, sim: Simulator
) -> None:
    vm = await clone(runtime)
    assert vm.vmid is not None
    async with transaction(runtime.sessions) as session:  # as made before evidence existed
        row = await session.get(Vm, vm.id)
        assert row is not None
        row.identity, row.identity_serial = GuestIdentity.LEGACY.value, None
        row.identity_vmgenid, row.identity_ctime = None, None
    assert await power(runtime, vm, "start") == "succeeded"
    confirmed = await get_vm(runtime, vm.id)
    assert confirmed is not None
    assert confirmed.identity == GuestIdentity.OURS
    assert confirmed.identity_vmgenid == guest_marks(sim, vm.vmid)["vmgenid"]
    assert confirmed.identity_serial == vm.id  # the serial it carried was ours
    await take_over(sim, vm.vmid, vm.name)  # our name, no serial: the old rule would agree

    outcome = await power(runtime, vm, "stop")

    assert outcome.startswith("failed: IdentityMismatch")
    assert sim.cluster.vms[vm.vmid].running


async def test_a_rerun_after_a_crash_before_the_evidence_recognises_its_own_clone(
    runtime: Runtime, sim: Simulator
) -> None:
    """The clone task succeeded, then the run died before it recorded the evidence."""
    op, vm = await stage_interrupted_clone(runtime, 4300, {"clone_intent": 4300})
    upid = await runtime.proxmox.start_clone(
        "pve1", 9000, 4300, name=vm.name, description=clone_description(None, vm.id)
    )
    await runtime.proxmox.wait_task(upid)
    async with transaction(runtime.sessions) as session:
        row = await session.get(type(op), op.id)
        assert row is not None
        row.result = {"clone_intent": 4300, "clone_upid": upid, "clone_vmid": 4300}

    await runtime.queue.enqueue(op.id)
    done = await wait_op(runtime, op.id)

    assert done.state == "succeeded", done.error_message
    assert done.upids == []  # waited for the recorded task, cloned nothing new
    assert [v for v, name in pool_vms(sim).items() if name == vm.name] == [4300]
    made = await get_vm(runtime, vm.id)
    assert made is not None
    assert (made.identity, made.identity_vmgenid) == ("ours", guest_marks(sim, 4300)["vmgenid"])


async def test_a_foreign_vm_with_our_name_where_our_clone_should_be_is_not_claimed(
    runtime: Runtime, sim: Simulator
) -> None:
    """The intent was recorded, the POST's answer lost; the vmid holds a colleague's VM
    that has our name (no tag of ours): a collision, left exactly as it was."""
    op, vm = await stage_interrupted_clone(
        runtime, 4400, {"clone_intent": 4400, "clone_intent_at": 0}
    )
    async with Colleague(sim) as colleague:
        await colleague.create_vm(4400, vm.name, node="pve1")
    foreign = dict(sim.cluster.vms[4400].config)

    await runtime.queue.enqueue(op.id)
    done = await wait_op(runtime, op.id, timeout=30)

    assert done.state == "succeeded", done.error_message
    assert (done.result or {})["collisions"] == [4400]
    assert sim.cluster.vms[4400].config == foreign  # no SMBIOS, no cloud-init written
    made = await get_vm(runtime, vm.id)
    assert made is not None
    assert made.vmid not in (None, 4400)
    assert made.identity_vmgenid == guest_marks(sim, made.vmid or 0)["vmgenid"]


async def test_an_earlier_clone_is_awaited_only_while_a_task_of_our_token_runs(
    runtime: Runtime, sim: Simulator
) -> None:
    """Our token has Sys.Audit on the nodes, so it sees every task there: a colleague's
    long clone of the same template must not keep a re-run waiting for a clone of ours."""
    op, _ = await stage_interrupted_clone(
        runtime, 4500, {"clone_intent": 4500, "clone_intent_at": 0}
    )
    async with Colleague(sim) as colleague:
        # outside our pool (as our own clone is until it ends): our POST collides, and
        # the re-run cannot tell yet whose it is
        await colleague.create_vm(4500, "someone-elses", node="pve1", pool="Other-Team")
        data = {"newid": 4501, "full": 1, "storage": "local-lvm", "name": "slow-copy"}
        slow = await colleague.call("POST", "/nodes/pve1/qemu/9000/clone", **data)
        polls: list[str] = []
        handle = sim.app.handle

        async def recording(method: str, target: str, headers: Any, body: bytes) -> Any:
            if "source=active" in target:
                polls.append(target)
            return await handle(method, target, headers, body)

        sim.app.handle = recording  # type: ignore[method-assign]
        await runtime.queue.enqueue(op.id)
        done = await wait_op(runtime, op.id, timeout=30)
        running = sim.cluster.tasks.tasks[slow].endtime is None
        await colleague.wait(slow)

    assert done.state == "succeeded", done.error_message
    assert running  # the colleague's clone was still running when ours moved on
    assert len(polls) == 1  # looked once: no task of our token, nothing to wait for
    assert (done.result or {})["collisions"] == [4500]


async def test_a_refused_start_writes_nothing_to_the_row(runtime: Runtime, sim: Simulator) -> None:
    """The report's last point: the refusal used to write the foreign VM's node first."""
    vm = await clone(runtime)
    assert vm.vmid is not None
    async with Colleague(sim) as colleague:
        await colleague.remove_vm(vm.vmid)
        other = "pve3" if vm.node != "pve3" else "pve2"
        await colleague.create_vm(vm.vmid, "teacher-golden-image", node=other)
    before = await get_vm(runtime, vm.id)
    assert before is not None

    op = await run(runtime, lambda s: request_power(s, vm.id, "start"))

    assert (op.state, op.error_type) == ("failed", "IdentityMismatch")
    after = await get_vm(runtime, vm.id)
    assert after is not None
    assert (after.node, after.status, after.name) == (before.node, before.status, before.name)
    assert not sim.cluster.vms[vm.vmid].running


async def test_a_template_without_vmgenid_gives_clones_without_one(
    runtime: Runtime, sim: Simulator
) -> None:
    """Proxmox gives a clone a new vmgenid only if its source has one (qemu-server
    `clone_vm`): the evidence is then the creation time and the serial."""
    del sim.cluster.vms[9000].config["vmgenid"]
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    op = await run(runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id))
    assert op.state == "succeeded", op.error_message
    vm = await get_vm(runtime, str(op.target_id))
    assert vm is not None
    assert vm.vmid is not None
    assert vm.identity_vmgenid is None
    ctime = meta_ctime(sim.cluster.vms[9000].config["meta"])
    assert (vm.identity_ctime, vm.identity_serial) == (ctime, vm.id)


async def test_a_locked_vm_of_ours_is_waited_for_not_taken_for_a_collision(
    runtime: Runtime, sim: Simulator
) -> None:
    """A clone re-run finds the row's own guest (evidence matches) busy with a backup: it
    is not a collision (that would release the vmid and clone a second VM)."""
    vm = await clone(runtime)
    assert vm.vmid is not None
    async with transaction(runtime.sessions) as session:  # as a deploy's next round does
        params = {"template_id": vm.template_id, "full_clone": False, "node": None}
        op = await OperationRepository(session).create(
            OperationKind.VM_CLONE, "vm", vm.id, params=params
        )
    sim.cluster.vms[vm.vmid].config["lock"] = "backup"
    before = set(pool_vms(sim))

    await runtime.queue.enqueue(op.id)
    done = await wait_op(runtime, op.id)

    assert (done.state, done.error_type) == ("failed", "TransientStep")
    assert "locked (backup)" in (done.error_message or "")
    assert (done.result or {}).get("collisions") is None
    assert set(pool_vms(sim)) == before  # nothing cloned
    kept = await get_vm(runtime, vm.id)
    assert kept is not None
    assert (kept.vmid, kept.identity) == (vm.vmid, "ours")
