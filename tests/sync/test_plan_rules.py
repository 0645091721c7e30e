"""The reconciler's pure parts: SMBIOS serials, status mapping, planning, cron schedule."""

from __future__ import annotations

import base64
import uuid

import pytest

from openvle_core.db.enums import VmStatus
from openvle_core.proxmox.models import ClusterResource
from openvle_core.sync.cluster import observed_status, smbios_serial
from openvle_core.sync.plan import VmPlan, plan_ipv4_duplicates, plan_vms, unmanaged_guests
from openvle_core.vms.repository import VmView
from openvle_worker.cron_sync import schedule

VM_ID = "0190f5a2-7c3e-7d1b-9a4f-3b2c1d0e9f87"


def guest(vmid: int, status: str | None = "running", **fields: object) -> ClusterResource:
    return ClusterResource.model_validate(
        {"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": "pve1", "status": status}
        | fields
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
