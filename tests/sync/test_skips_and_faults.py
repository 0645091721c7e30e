"""What the sync leaves alone, how it settles paused and just-cloned VMs, and failures."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from openvle_core.db.enums import OperationState, VmStatus
from openvle_core.db.models import Vm
from openvle_core.db.session import transaction
from openvle_core.db.types import utcnow
from openvle_core.operations.repository import OperationRepository
from openvle_core.vms.repository import VmRepository
from tests.sync.kit import Harness, evidence_of

RUNNING_VMID = 10000  # the seed runs every 4th clone


async def one_vm(h: Harness, vmid: int, status: str, **fields: object) -> Vm:
    """A DB row for pool clone `vmid` on its node, with the given status."""
    guest = h.sim.cluster.vms[vmid]
    made = {**evidence_of(h.sim, vmid), **fields}
    vm = Vm(vmid=vmid, name=guest.name, node=guest.node, status=status, **made)
    await h.add_vms(vm)
    return vm


async def status_of(h: Harness, vm_id: str) -> str:
    async with h.sessions() as session:
        return (await VmRepository(session).require(vm_id)).status


@pytest.mark.parametrize("status", [VmStatus.STARTING, VmStatus.CLONING, VmStatus.DELETING])
async def test_transitional_vms_are_skipped(harness: Harness, status: VmStatus) -> None:
    vm = await one_vm(harness, RUNNING_VMID, status)
    result = await harness.sync()
    assert result.skipped == 1
    assert await status_of(harness, vm.id) == status


async def test_a_vm_with_an_operation_in_flight_is_skipped(harness: Harness) -> None:
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.STOPPED)
    async with transaction(harness.sessions) as session:
        await OperationRepository(session).create("vm.start", "vm", vm.id)
    result = await harness.sync()
    assert result.skipped == 1
    assert await status_of(harness, vm.id) == VmStatus.STOPPED


async def test_a_vm_whose_operation_just_finished_waits_for_the_lag(harness: Harness) -> None:
    """cluster/resources lags ~10 s: right after a stop it may still say running."""
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.STOPPED)
    async with transaction(harness.sessions) as session:
        ops = OperationRepository(session)
        op = await ops.create("vm.stop", "vm", vm.id)
        await ops.finish(op, OperationState.SUCCEEDED, when=utcnow() - timedelta(seconds=5))
    assert (await harness.sync()).skipped == 1
    assert await status_of(harness, vm.id) == VmStatus.STOPPED
    async with transaction(harness.sessions) as session:
        op.finished_at = utcnow() - timedelta(minutes=5)
        await session.merge(op)
    assert (await harness.sync()).vms_updated == 1
    assert await status_of(harness, vm.id) == VmStatus.RUNNING


async def test_a_vm_locked_for_migration_on_proxmox_is_skipped(harness: Harness) -> None:
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.STOPPED)
    harness.sim.cluster.vms[RUNNING_VMID].config["lock"] = "migrate"
    assert (await harness.sync()).skipped == 1
    assert await status_of(harness, vm.id) == VmStatus.STOPPED


async def test_a_paused_vm_stays_paused_until_it_is_resumed(harness: Harness) -> None:
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.PAUSED, ipv4="10.20.39.16")
    guest = harness.sim.cluster.vms[RUNNING_VMID]
    guest.paused = True
    result = await harness.sync()
    assert result.status_checks == 1  # resources say running: status/current decides
    assert (result.vms_updated, await status_of(harness, vm.id)) == (0, VmStatus.PAUSED)
    guest.paused = False
    assert (await harness.sync()).vms_updated == 1
    assert await status_of(harness, vm.id) == VmStatus.RUNNING


async def test_a_just_cloned_vm_keeps_its_status_while_proxmox_says_unknown(
    harness: Harness,
) -> None:
    vm = await one_vm(harness, 10001, VmStatus.RUNNING, ipv4="10.20.39.17")
    harness.sim.cluster.vms[10001].entry = None  # as right after a clone: no stats yet
    result = await harness.sync()
    assert result.unknown == 1
    assert (result.vms_updated, await status_of(harness, vm.id)) == (0, VmStatus.RUNNING)
    harness.sim.cluster.tick()
    assert (await harness.sync()).vms_updated == 1
    assert await status_of(harness, vm.id) == VmStatus.STOPPED


async def test_an_unreachable_proxmox_fails_the_sync_cleanly(harness: Harness) -> None:
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.STOPPED)
    harness.sim.faults.add("status", "/cluster/resources", status=596, n=3)  # every retry
    failed = await harness.sync()
    assert not failed.ok
    assert failed.error is not None
    assert failed.error.startswith("ProxmoxUnavailable")
    assert await status_of(harness, vm.id) == VmStatus.STOPPED
    recovered = await harness.sync()  # the next tick works
    assert recovered.ok, recovered.error
    assert await status_of(harness, vm.id) == VmStatus.RUNNING


async def test_agent_failures_are_counted_not_fatal(harness: Harness) -> None:
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.STOPPED)
    harness.sim.faults.add("agent_not_running", str(RUNNING_VMID))
    result = await harness.sync()
    assert result.ok
    assert (result.ip_lookups, result.ip_found) == (1, 0)
    async with harness.sessions() as session:
        row = await VmRepository(session).require(vm.id)
    assert (row.status, row.ipv4) == (VmStatus.RUNNING, None)


async def test_a_vm_just_booted_is_asked_for_its_ipv4_by_a_later_sync(harness: Harness) -> None:
    """Started behind OpenVLE's back seconds ago: its agent is not asked until the guest
    has been up for WORKER_AGENT_IP_FIRST_POLL (its status is written at once)."""
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.STOPPED)
    guest = harness.sim.cluster.vms[RUNNING_VMID]
    guest.started_at = time.time() - 2  # booted 2 s ago
    harness.sim.cluster.tick()
    agent = ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
    asked = harness.sim.request_log[agent]
    result = await harness.sync()
    assert (result.vms_updated, result.ip_deferred, result.ip_lookups) == (1, 1, 0)
    assert harness.sim.request_log[agent] == asked  # no agent request
    assert await status_of(harness, vm.id) == VmStatus.RUNNING
    guest.started_at = time.time() - harness.settings.worker.agent_ip_first_poll - 5
    harness.sim.cluster.tick()
    later = await harness.sync()
    assert (later.ip_deferred, later.ip_lookups, later.ip_found) == (0, 1, 1)
    assert harness.sim.request_log[agent] == asked + 1
    async with harness.sessions() as session:
        assert (await VmRepository(session).require(vm.id)).ipv4 is not None


async def test_a_pool_that_suddenly_looks_empty_marks_nothing_missing(harness: Harness) -> None:
    vm = await one_vm(harness, RUNNING_VMID, VmStatus.RUNNING)
    cluster = harness.sim.cluster
    for vmid in list(cluster.pools["OpenVLE-VMs"].vms):
        cluster.set_pool(vmid, None)  # as when the token loses its pool ACL
    result = await harness.sync()
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("PoolLooksEmpty")
    assert await status_of(harness, vm.id) == VmStatus.RUNNING
