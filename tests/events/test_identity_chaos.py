"""Identity chaos: other clients take our vmids during a 50-VM event's deploy, sync and
archive, and not one of their VMs is touched.

The simulator's `vmid_takeover` fault replaces one of our VMs, right before a read of
its config or status, by a colleague's new running VM on the same vmid, node and pool,
often with our VM's very name. Through all three phases the recorder checks that no
request that changes anything reached a taken vmid after it was taken, and each
colleague's VM is, at the end, exactly as it was made. Ours end as expected: the deploy
replaces the VMs it lost, the sync marks the ones lost after it `missing`/`foreign` and
lists the colleagues' VMs as unmanaged, and the archive (run again once the sync has seen
the last losses) removes every VM of ours and no other.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from openvle_core.db.enums import GuestIdentity, VmStatus
from openvle_core.db.models import Vm
from openvle_core.db.types import utcnow
from openvle_core.runtime import Runtime
from openvle_core.sync import SyncResult, sync_cluster
from openvle_core.sync.identity import memo_for
from openvle_pvesim import Simulator, run_simulator
from tests.events.kit import (
    DEBIAN,
    UBUNTU,
    event_vms,
    make_event,
    pool_guests,
    run,
    runtime_factory,
)
from tests.vms.kit import TIME_SCALE

WRITES = frozenset({"POST", "PUT", "DELETE"})
VM_PATH = re.compile(r"/nodes/[^/]+/qemu/(\d+)(?:/|$)")
HA_PATH = re.compile(r"/cluster/ha/resources/(?:vm:|vm%3A)?(\d+)")


class Recorder:
    """Every request in order, and which of them a takeover happened in."""

    def __init__(self, sim: Simulator) -> None:
        self.calls: list[tuple[str, int | None]] = []  # (method, vmid addressed)
        self.taken_at: dict[int, int] = {}  # vmid -> index of the request it was taken in
        handle, takeovers = sim.app.handle, sim.faults.takeovers

        async def recording(method: str, target: str, headers: Any, body: bytes) -> Any:
            path = target.partition("?")[0]
            match = VM_PATH.search(path) or HA_PATH.search(path)
            self.calls.append((method, int(match[1]) if match else None))
            before = set(takeovers)
            reply = await handle(method, target, headers, body)
            for vmid in set(takeovers) - before:
                self.taken_at[vmid] = len(self.calls) - 1
            return reply

        sim.app.handle = recording  # type: ignore[method-assign]

    def writes_to_taken(self) -> list[tuple[str, int]]:
        """Requests that could change a guest, sent to a vmid after it was taken."""
        return [
            (method, vmid)
            for i, (method, vmid) in enumerate(self.calls)
            if method in WRITES and vmid in self.taken_at and i > self.taken_at[vmid]
        ]


@pytest.fixture
async def chaos_sim() -> AsyncIterator[Simulator]:
    async with run_simulator(version="9.1", time_scale=TIME_SCALE, random_seed=14) as sim:
        yield sim


def take_vmids(sim: Simulator, ours: int, others: int, p: float | None) -> None:
    """From now on, other clients take up to `ours` vmids with our VM's name and up to
    `others` with a name of their own (probability `p` per read; None: the first reads)."""
    sim.faults.clear()
    sim.faults.add("vmid_takeover", n=ours, p=p, message="{name}")
    sim.faults.add("vmid_takeover", n=others, p=p)


def untouched(sim: Simulator, recorder: Recorder) -> None:
    """Every colleague's VM is there, as made, running, in our pool, and no request that
    changes anything reached it."""
    assert recorder.writes_to_taken() == []
    for vmid, config in sim.faults.takeovers.items():
        guest = sim.cluster.vms[vmid]
        assert (guest.config, guest.running) == (config, True)
        assert sim.cluster.pool_of(vmid) == "OpenVLE-VMs"
        assert vmid not in sim.cluster.ha


async def sync_now(runtime: Runtime) -> SyncResult:
    """The periodic sync, once our operations' settle time has passed."""
    result = await sync_cluster(
        sessions=runtime.sessions,
        proxmox=runtime.proxmox,
        snapshot=runtime.snapshot,
        settings=runtime.settings,
        now=utcnow() + timedelta(minutes=1),
    )
    assert result.ok, result.error
    return result


def all_ours(sim: Simulator, vms: list[Vm]) -> None:
    """Each row's guest is there and carries the row's evidence."""
    for vm in vms:
        assert vm.vmid is not None
        config = sim.cluster.vms[vm.vmid].config
        assert (vm.identity, config["vmgenid"]) == (GuestIdentity.OURS, vm.identity_vmgenid)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_no_foreign_vm_is_touched_in_deploy_sync_and_archive(
    chaos_sim: Simulator, database_url: str
) -> None:
    sim = chaos_sim
    recorder = Recorder(sim)
    async with runtime_factory(sim, database_url, None)(worker={"max_retry": 8}) as runtime:
        event_id = await make_event(runtime, "idchaos", 25, (DEBIAN, UBUNTU))

        take_vmids(sim, ours=5, others=3, p=0.05)
        deploy = await run(runtime, "deploy", event_id, timeout=100)
        if deploy.state != "succeeded":  # a VM lost in every round: deploy what is missing
            sim.faults.clear()
            deploy = await run(runtime, "deploy", event_id, timeout=100)

        assert (deploy.state, deploy.error_message) == ("succeeded", None)
        in_deploy = set(sim.faults.takeovers)
        assert len(in_deploy) >= 3
        vms = await event_vms(runtime, event_id)
        assert len(vms) == 50
        assert {vm.status for vm in vms} == {VmStatus.RUNNING}
        all_ours(sim, vms)
        assert {vm.vmid for vm in vms} == set(pool_guests(sim)) - in_deploy
        untouched(sim, recorder)

        take_vmids(sim, ours=4, others=2, p=None)
        memo_for(runtime.proxmox).entries.clear()  # the sweep looks at every VM
        synced = await sync_now(runtime)

        in_sync = set(sim.faults.takeovers) - in_deploy
        assert (synced.foreign, set(synced.foreign_vmids)) == (6, in_sync)
        assert set(synced.unmanaged_vmids) == in_deploy | in_sync
        vms = await event_vms(runtime, event_id)
        lost = [vm for vm in vms if vm.vmid in in_sync]
        assert {(vm.status, vm.identity) for vm in lost} == {("missing", "foreign")}
        all_ours(sim, [vm for vm in vms if vm.vmid not in in_sync])
        untouched(sim, recorder)

        take_vmids(sim, ours=4, others=2, p=0.05)
        archive = await run(runtime, "archive", event_id, timeout=100)
        in_archive = set(sim.faults.takeovers) - in_deploy - in_sync
        if in_archive:  # refused, rows kept: the sync sees them gone, the archive ends
            assert archive.state == "failed"
            assert "IdentityMismatch" in (archive.error_message or "")
            sim.faults.clear()
            assert (await sync_now(runtime)).foreign == len(in_archive)
            archive = await run(runtime, "archive", event_id, timeout=100)

        assert (archive.state, archive.error_message) == ("succeeded", None)
        assert await event_vms(runtime, event_id) == []
        assert set(pool_guests(sim)) == set(sim.faults.takeovers)  # only theirs are left
        untouched(sim, recorder)
