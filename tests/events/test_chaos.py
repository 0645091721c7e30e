"""Chaos: a 100-VM deploy and its archive while the simulator misbehaves.

About 10 % of all calls fail transiently (502 or 596), clones and starts hit lock
timeouts, /cluster/nextid hands out ids another client takes, and a few clone and start
tasks fail outright. The deploy must still end with exactly 100 running VMs of ours (no
orphan, no duplicate), no request may touch a VM outside our pool, and the archive must
remove every one of them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

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
from tests.vms.kit import POOL, TIME_SCALE

# A deploy asks /cluster/nextid about once per batch (not once per VM): its first three
# answers are contested, so the race is exercised whatever the timing.
FAULTS = (
    "status=502:p=0.05:*; status=596:p=0.05:*; lock_timeout=qmclone:p=0.1; "
    "lock_timeout=qmstart:p=0.05; nextid_collision:n=3; task_fail=qmclone:n=3; "
    "task_fail=qmstart:n=2"
)
VM_PATH = re.compile(r"/nodes/[^/]+/qemu/(\d+)(?:/|$)")
HA_PATH = re.compile(r"/cluster/ha/resources/(?:vm:|vm%3A)?(\d+)")


class Recorder:
    """Every (method, path) the simulator was asked, in order (wraps its request entry)."""

    def __init__(self, sim: Simulator) -> None:
        self.calls: list[tuple[str, str]] = []
        handle = sim.app.handle

        async def recording(method: str, target: str, headers: Any, body: bytes) -> Any:
            self.calls.append((method, target.partition("?")[0]))
            return await handle(method, target, headers, body)

        sim.app.handle = recording  # type: ignore[method-assign]

    def vmids_touched(self) -> set[int]:
        found = set()
        for _, path in self.calls:
            match = VM_PATH.search(path) or HA_PATH.search(path)
            if match:
                found.add(int(match[1]))
        return found


@pytest.fixture
async def chaos_sim() -> AsyncIterator[Simulator]:
    async with run_simulator(version="9.1", time_scale=TIME_SCALE, faults=FAULTS) as sim:
        yield sim


def _outside_pool(sim: Simulator) -> set[int]:
    return {v for v in sim.cluster.vms if sim.cluster.pool_of(v) != POOL}


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_100_vm_deploy_survives_the_faults_and_archives_clean(
    chaos_sim: Simulator, database_url: str
) -> None:
    sim = chaos_sim
    recorder = Recorder(sim)
    worker = {"max_retry": 8}
    async with runtime_factory(sim, database_url, None)(worker=worker) as runtime:
        event_id = await make_event(runtime, "chaos", 50, (DEBIAN, UBUNTU))

        op = await run(runtime, "deploy", event_id, timeout=150)

        assert (op.state, op.error_message) == ("succeeded", None)
        vms = await event_vms(runtime, event_id)
        guests = pool_guests(sim)
        assert len(vms) == 100
        assert len(guests) == 100
        assert {vm.vmid for vm in vms} == set(guests)
        assert sorted(g.name for g in guests.values()) == sorted(vm.name for vm in vms)
        assert all(g.running for g in guests.values())
        assert {vm.status for vm in vms} == {"running"}
        assert set(sim.cluster.ha) == set(guests)
        fired = sim.faults.fired
        assert fired["status"] > 50
        assert fired["nextid_collision"] > 0
        assert fired["lock_timeout"] > 0
        assert fired["task_fail"] == 5
        outside = _outside_pool(sim)
        assert len(outside) > 3  # the seeded Other-Team VMs plus the ids others took
        assert set(guests) <= recorder.vmids_touched()  # the recorder does see VM calls
        assert recorder.vmids_touched() & outside == set()

        archived = await run(runtime, "archive", event_id, timeout=150)

        assert (archived.state, archived.error_message) == ("succeeded", None)
        assert pool_guests(sim) == {}
        assert sim.cluster.ha == {}
        assert await event_vms(runtime, event_id) == []
        assert recorder.vmids_touched() & _outside_pool(sim) == set()
