"""The sync changes a row only from a guest whose identity matches it.

A vmid now held by a guest that is not ours marks our row `missing` (identity `foreign`)
and lists the guest as unmanaged, with a changelog entry and a metric; nothing is
copied from it. A guest replaced without any visible change is found by the sweep; a
legacy row records its evidence on first sight; adoption needs the evidence too.
"""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

from openvle_core.db.enums import GuestIdentity, OperationState, TemplateStatus, VmStatus
from openvle_core.db.models import Vm
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.metrics import REGISTRY
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.sync.identity import memo_for
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository
from openvle_pvesim.cluster import VM
from tests.sync.kit import Harness, replace_guest
from tests.sync.test_sync import RUNNING, known_vms, log_of, row


def foreign_found() -> float:
    return REGISTRY.get_sample_value("openvle_sync_foreign_guests_total") or 0.0


async def test_a_foreign_guest_on_our_vmid_marks_the_row_missing_and_copies_nothing(
    harness: Harness,
) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    ours = await row(harness, vms[10003].id)
    replace_guest(harness.sim, 10003, "teacher-golden-image").running = True
    harness.sim.cluster.tick()
    counted = foreign_found()

    result = await harness.sync()

    assert (result.foreign, result.foreign_vmids, result.missing) == (1, [10003], 1)
    assert 10003 in result.unmanaged_vmids
    kept = await row(harness, vms[10003].id)
    assert (kept.name, kept.node, kept.vmid, kept.ipv4) == (ours.name, ours.node, 10003, None)
    assert (kept.status, kept.identity) == (VmStatus.MISSING, GuestIdentity.FOREIGN)
    entries = await log_of(harness, vms[10003].id)
    assert ("identity", "ours", "foreign") in entries
    assert ("status", "stopped", "missing") in entries
    assert not any(field == "name" for field, _, _ in entries)
    assert foreign_found() == counted + 1
    again = await harness.sync()  # the row is settled: listed, not found again
    assert (again.foreign, again.changes) == (0, 0)
    assert 10003 in again.unmanaged_vmids


async def test_a_guest_replaced_with_our_name_and_state_is_found_by_the_sweep(
    harness: Harness,
) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    replace_guest(harness.sim, RUNNING[1])  # same name, node, status: no diff at all
    assert (await harness.sync()).foreign == 0  # confirmed a moment ago: not read again
    memo = memo_for(harness.proxmox)
    memo.entries = {vmid: (vm_id, when - 3600) for vmid, (vm_id, when) in memo.entries.items()}

    result = await harness.sync()

    assert result.foreign_vmids == [RUNNING[1]]
    assert result.identity_checks == len(vms)  # the sweep looked at every row again
    kept = await row(harness, vms[RUNNING[1]].id)
    assert (kept.status, kept.identity) == (VmStatus.MISSING, GuestIdentity.FOREIGN)


async def test_a_vm_an_operation_was_refused_for_is_checked_again_at_once(
    harness: Harness,
) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    replace_guest(harness.sim, 10005)  # no visible change; the memo would wait its TTL
    async with transaction(harness.sessions) as session:
        ops = OperationRepository(session)
        op = await ops.create(OperationKind.VM_POWER, "vm", vms[10005].id)
        failed = utcnow() - timedelta(minutes=1)
        await ops.finish(op, OperationState.FAILED, error_type="IdentityMismatch", when=failed)

    result = await harness.sync()

    assert (result.foreign_vmids, result.identity_checks) == ([10005], 1)


async def test_a_legacy_row_records_its_evidence_on_first_sight(harness: Harness) -> None:
    guest = harness.sim.cluster.vms[10001]
    legacy = Vm(vmid=10001, name=guest.name, node=guest.node, status="stopped", identity="legacy")
    await harness.add_vms(legacy)

    result = await harness.sync()

    assert result.ok, result.error
    confirmed = await row(harness, legacy.id)
    assert confirmed.identity == GuestIdentity.OURS
    assert confirmed.identity_vmgenid == guest.config["vmgenid"]
    assert ("identity", "legacy", "ours") in await log_of(harness, legacy.id)


async def test_a_change_whose_guest_cannot_be_read_waits_for_a_later_sync(
    harness: Harness,
) -> None:
    vms = await known_vms(harness)
    await harness.sync()
    harness.sim.cluster.vms[10002].node = "pve1" if vms[10002].node != "pve1" else "pve2"
    path = "/nodes/*/qemu/10002/config"
    harness.sim.faults.add("status", path, method="GET", status=500, n=1, message="broken")

    deferred = await harness.sync()
    applied = await harness.sync()

    assert (deferred.identity_deferred, deferred.vms_updated, deferred.lookups_failed) == (1, 0, 1)
    assert (applied.identity_deferred, applied.vms_updated) == (0, 1)
    assert (await row(harness, vms[10002].id)).node == harness.sim.cluster.vms[10002].node


async def test_a_clone_of_our_vm_carrying_its_serial_is_not_adopted(harness: Harness) -> None:
    """Our VM is gone; a colleague's clone of it (our serial copied, a new vmgenid) sits
    in the pool under another vmid: it is listed as unmanaged, never taken over."""
    vms = await known_vms(harness)
    lost = vms[10004]
    serial = base64.b64encode(lost.id.encode()).decode()
    harness.sim.cluster.vms[10004].config["smbios1"] += f",serial={serial},base64=1"
    async with transaction(harness.sessions) as session:
        await VmRepository(session).bulk_update([{"id": lost.id, "identity_serial": lost.id}])
    await harness.sync()
    cluster = harness.sim.cluster
    ours = cluster.vms.pop(10004)
    cluster.set_pool(10004, None)
    copy = dict(ours.config, vmgenid=str(uuid.uuid4()))  # a clone keeps the serial, not this
    cluster.vms[10099] = VM(10099, ours.node, copy)
    cluster.set_pool(10099, "OpenVLE-VMs")
    cluster.tick()

    result = await harness.sync()

    assert (result.adopted, result.unmanaged_vmids) == (0, [10099])
    kept = await row(harness, lost.id)
    assert (kept.vmid, kept.status) == (10004, VmStatus.MISSING)


async def test_a_foreign_template_on_a_templates_vmid_is_not_synced_into_it(
    harness: Harness,
) -> None:
    await harness.sync()  # imports the seeded templates with their evidence
    replace_guest(harness.sim, 9001, "rocky-9-template")

    result = await harness.sync()

    assert result.foreign_vmids == [9001]
    async with harness.sessions() as session:
        template = await TemplateRepository(session).get_by_vmid(9001)
    assert template is not None
    assert (template.name, template.status, template.identity) == (
        "ubuntu-2404-template",
        TemplateStatus.MISSING,
        GuestIdentity.FOREIGN,
    )
