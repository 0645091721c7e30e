"""The reconciler's pure parts: SMBIOS serials, status mapping, planning, cron schedule."""

from __future__ import annotations

import base64
import uuid

import pytest

from openvle_core.db.enums import VmStatus
from openvle_core.guests.identity import (
    Claim,
    Evidence,
    Marks,
    clone_tag,
    is_our_clone,
    meta_ctime,
    mismatch,
)
from openvle_core.proxmox.models import ClusterResource
from openvle_core.sync.cluster import Guest, observed_status, smbios_serial
from openvle_core.sync.plan import (
    VmPlan,
    apply_verdicts,
    judge,
    needs_check,
    plan_ipv4_duplicates,
    plan_vms,
    unmanaged_guests,
)
from openvle_core.vms.repository import VmView
from openvle_worker.cron_sync import schedule

VM_ID = "0190f5a2-7c3e-7d1b-9a4f-3b2c1d0e9f87"


def guest(vmid: int, status: str | None = "running", **fields: object) -> Guest:
    return Guest.of(
        ClusterResource.model_validate(
            {"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": "pve1", "status": status}
            | fields
        )
    )


@pytest.mark.parametrize(
    ("smbios1", "expected"),
    [
        (f"uuid={uuid.uuid4()},serial={base64.b64encode(VM_ID.encode()).decode()},base64=1", VM_ID),
        (f"serial={VM_ID.upper()}", VM_ID),  # base64=0: taken as is, normalised
        ("uuid=5f0e6c1c-1111-4a4a-9b9b-0123456789ab", None),  # no serial
        ("serial=QUJDLTEyMw==,base64=1", None),  # "ABC-123": not a UUID
        ("serial=!!notbase64,base64=1", None),
        (None, None),
    ],
)
def test_smbios_serial(smbios1: str | None, expected: str | None) -> None:
    assert smbios_serial(smbios1) == expected


@pytest.mark.parametrize(
    ("status", "lock", "expected"),
    [
        ("running", None, VmStatus.RUNNING),
        ("stopped", None, VmStatus.STOPPED),
        ("stopped", "suspended", VmStatus.PAUSED),  # suspended to disk
        ("unknown", None, None),  # just cloned, stats not in yet
    ],
)
def test_observed_status(status: str, lock: str | None, expected: VmStatus | None) -> None:
    assert observed_status(guest(100, status, lock=lock)) == expected


def test_plan_changes_only_what_differs() -> None:
    views = [
        VmView("a", 100, "vm-a", "pve1", "running", "10.0.0.1"),
        VmView("b", 101, "vm-b", "pve1", "stopped", None),
        VmView("c", 102, "vm-c", "pve1", "stopped", None),
    ]
    guests = {
        100: guest(100, name="vm-a"),
        101: guest(101, name="vm-b-renamed", node="pve2"),
    }
    plan = plan_vms(views, guests, skip=set(), adopted={})
    assert "a" not in plan.diffs
    assert plan.diffs["b"] == {
        "node": ("pve1", "pve2"),
        "status": ("stopped", "running"),
        "name": ("vm-b", "vm-b-renamed"),
    }
    assert plan.diffs["c"] == {"status": ("stopped", "missing")}
    assert [r.vm_id for r in plan.ip_wanted] == ["b"]


def test_only_rows_whose_guest_is_theirs_keep_their_changes() -> None:
    """a: its guest; b: another guest on its vmid; c: not read; d: legacy, first seen."""
    made = {"identity": "ours", "identity_vmgenid": "g-a", "identity_ctime": 7}
    views = [
        VmView("a", 100, "vm-a", "pve1", "stopped", None, **made),
        VmView("b", 101, "vm-b", "pve1", "stopped", None, **{**made, "identity_vmgenid": "g-b"}),
        VmView("c", 102, "vm-c", "pve1", "stopped", None, **made),
        VmView("d", 103, "vm-d", "pve1", "stopped", None, identity="legacy"),
        VmView("e", 104, "vm-e", "pve1", "missing", None, identity="foreign"),
    ]
    guests = {v: guest(v, name=f"vm-{'abcde'[v - 100]}", node="pve2") for v in range(100, 105)}
    plan = plan_vms(views, guests, skip=set(), adopted={})
    needed = needs_check(plan)
    assert sorted(needed) == ["a", "b", "c", "d"]  # e's guest is gone: nothing to compare
    verdicts = {
        "a": judge(views[0], Marks(vmgenid="g-a", ctime=7, name="vm-a")),
        "b": judge(views[1], Marks(vmgenid="other", ctime=7, name="vm-b")),
        "d": judge(views[3], Marks(vmgenid="g-d", ctime=9, name="vm-d")),
    }
    assert verdicts["b"].reason == "its vmgenid is 'other', ours is 'g-b'"
    apply_verdicts(plan, {v.id: v for v in views}, needed, verdicts)
    assert plan.diffs["a"]["node"] == ("pve1", "pve2")
    assert plan.diffs["b"] == {"identity": ("ours", "foreign"), "status": ("stopped", "missing")}
    assert "c" not in plan.diffs
    assert plan.unverified == 1
    assert plan.diffs["d"]["identity"] == ("legacy", "ours")
    assert plan.diffs["d"]["identity_vmgenid"] == (None, "g-d")
    assert [r.vmid for r in plan.foreign] == [101]
    assert {r.vm_id for r in plan.ip_wanted} <= {"a", "d"}


def test_the_identity_rule() -> None:
    """Evidence decides once recorded (the name never); legacy rows use the old rule."""
    evidence = Evidence(vmgenid="g", ctime=5, serial=VM_ID)
    ours = Marks(vmgenid="g", ctime=5, serial=VM_ID, name="renamed")
    assert mismatch(Claim("vm-a", evidence, uuid=VM_ID), ours) is None
    for marks, what in [
        (Marks(vmgenid="x", ctime=5, serial=VM_ID, name="vm-a"), "vmgenid"),
        (Marks(vmgenid="g", ctime=6, serial=VM_ID, name="vm-a"), "creation time"),
        (Marks(vmgenid="g", ctime=5, serial=None, name="vm-a"), "SMBIOS serial"),
        (Marks(vmgenid="g", ctime=5, serial=VM_ID, template=True), "template"),
    ]:
        assert what in (mismatch(Claim("vm-a", evidence, uuid=VM_ID), marks) or "")
    nothing = Claim("vm-a", Evidence(), uuid=VM_ID)
    assert "no identity evidence" in (mismatch(nothing, Marks(name="vm-a")) or "")
    legacy = Claim("vm-a", Evidence(), uuid=VM_ID, legacy=True)
    assert mismatch(legacy, Marks(name="vm-a")) is None
    assert mismatch(legacy, Marks(serial=VM_ID, name="other")) is None
    assert mismatch(legacy, Marks(serial="someone-else", name="vm-a")) is not None
    assert mismatch(legacy, Marks(name="other")) is not None
    assert is_our_clone(Marks(description=f"notes\n\n{clone_tag(VM_ID)}"), VM_ID)
    assert not is_our_clone(Marks(description=clone_tag(VM_ID), lock="clone"), VM_ID)
    assert not is_our_clone(Marks(description="openvle-clone: another", name="vm-a"), VM_ID)
    assert meta_ctime("creation-qemu=9.2.0,ctime=1735689600") == 1735689600


def test_unmanaged_waits_for_stats_and_ignores_templates() -> None:
    guests = {
        100: guest(100),
        101: guest(101, status="unknown"),  # could still turn out to be a template
        102: guest(102, template=1, status="stopped"),
        103: guest(103),
    }
    assert [g.vmid for g in unmanaged_guests(guests, known_vmids={103})] == [100]


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (60, {"minute": set(range(60)), "second": 0}),
        (15, {"second": {0, 15, 30, 45}}),
        (45, {"second": {0, 30}}),  # rounded down to a divisor of the minute
        (300, {"minute": set(range(0, 60, 5)), "second": 0}),
        (7200, {"hour": set(range(0, 24, 2)), "minute": 0, "second": 0}),
    ],
)
def test_cron_schedule(interval: int, expected: dict[str, object]) -> None:
    assert schedule(interval) == expected


def test_duplicate_ipv4_is_planned_on_the_state_after_the_plan() -> None:
    views = [
        VmView("a", 100, "vm-a", "pve1", "running", "10.0.0.5"),
        VmView("b", 101, "vm-b", "pve1", "running", None),  # its address arrives this tick
        VmView("c", 102, "vm-c", "pve1", "stopped", "10.0.0.5"),  # stopped: holds nothing
        VmView("d", 103, "vm-d", "pve1", "running", "10.0.0.9", ipv4_duplicate=True),
        VmView("e", 104, "vm-e", "pve1", "starting", "10.0.0.5"),  # transitional: left be
    ]
    plan = VmPlan()
    plan.change("b", "ipv4", None, "10.0.0.5")
    shared = plan_ipv4_duplicates(plan, views, skip=set())
    assert shared == {"10.0.0.5": ["a", "b"]}
    assert plan.diffs["a"] == {"ipv4_duplicate": (False, True)}
    assert plan.diffs["b"] == {"ipv4": (None, "10.0.0.5"), "ipv4_duplicate": (False, True)}
    assert plan.diffs["d"] == {"ipv4_duplicate": (True, False)}  # alone again: cleared
    assert "c" not in plan.diffs
    assert "e" not in plan.diffs
    plan = VmPlan()
    plan.change("a", "status", "running", "stopped")  # stopping this tick ends the clash
    views[1] = VmView("b", 101, "vm-b", "pve1", "running", "10.0.0.5", ipv4_duplicate=True)
    assert plan_ipv4_duplicates(plan, views, skip={"d"}) == {}
    assert plan.diffs["b"] == {"ipv4_duplicate": (True, False)}
    assert "d" not in plan.diffs  # busy: a later sync clears it
