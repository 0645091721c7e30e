"""Every clone takes the clone caps, not only an event's: a `vm.clone` (POST /api/v1/vms),
a derived template, and a VM of an event recovered on its own wait for their slots;
two instances given the same `WORKER_CLONE_CAPS_KEY` on one Redis share one budget.

The test holds the only slot of the seeded Debian template's shared storage (ceph,
`WORKER_CLONES_PER_STORAGE=1`) itself, starts the path, waits until the caps count one
waiting clone, and checks that the simulator has seen no clone request yet; once the
slot is given back the clone runs and the operation succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.events.deploy import ensure_vms
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository
from openvle_core.placement.caps import holds_slot, read_disks
from openvle_core.runtime import Runtime, clone_caps_prefix
from openvle_core.templates.service import request_create_template
from openvle_core.vms.service import request_clone
from openvle_pvesim import Simulator, run_simulator
from tests.events.kit import make_event
from tests.vms.kit import (
    SHARED_TEMPLATE,
    TIME_SCALE,
    add_template,
    make_settings,
    open_fast_runtime,
    submit,
    wait_op,
)

CAPS = {"clones_per_storage": 1, "clones_per_node": 8}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(time_scale=TIME_SCALE, check_responses=True) as s:
        yield s
        assert s.violations == []


@contextlib.asynccontextmanager
async def instance(
    sim: Simulator, directory: Path, redis_url: str | None = None, **worker: Any
) -> AsyncIterator[Runtime]:
    """One OpenVLE instance: its own SQLite database, in-process queue, the caps given
    (in Redis when `redis_url` (REDIS_URL) or WORKER_CLONE_CAPS_REDIS_URL is set)."""
    url = f"sqlite+aiosqlite:///{directory}.sqlite3"
    await upgrade_to_head(url)
    settings = make_settings(sim, url, redis_url=redis_url, worker={**CAPS, **worker})
    opened = open_fast_runtime(settings)
    async with opened as runtime:
        yield runtime


def clone_posts(sim: Simulator) -> int:
    """Clone tasks the simulator has started (each is one accepted clone POST)."""
    return sum(1 for t in sim.cluster.tasks.tasks.values() if t.type == "qmclone")


@contextlib.asynccontextmanager
async def ceph_slot_held(runtime: Runtime) -> AsyncIterator[None]:
    """Hold the slots of one linked clone of the Debian template (node pve1, ceph)."""
    vmid, _, node = SHARED_TEMPLATE
    disks = await read_disks(runtime.proxmox, vmid, node)
    assert disks.storages == {"ceph"}
    async with runtime.caps.clone_slot(node, disks, False):
        assert holds_slot()
        yield


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


Start = Callable[[Runtime], Awaitable[str]]


async def waits_for_the_slot(
    sim: Simulator, holder: Runtime, runtime: Runtime, start: Start
) -> Operation:
    """Start a path while `holder` holds the ceph slot: it waits, no clone is posted;
    given back, the clone runs. Returns the finished operation."""
    async with ceph_slot_held(holder):
        before = clone_posts(sim)
        op_id = await start(runtime)
        await until(lambda: runtime.caps.gauge.waiting == 1, "a clone waits for its slot")
        await asyncio.sleep(0)  # give the waiter a turn: it must still wait
        assert clone_posts(sim) == before
        assert runtime.caps.gauge.waiting == 1
    op = await wait_op(runtime, op_id)
    assert op.state == "succeeded", op.error_message
    assert clone_posts(sim) == before + 1
    assert runtime.caps.gauge.waiting == 0
    assert not any(runtime.caps.gauge.holding.values())
    return op


async def post_vm(runtime: Runtime) -> str:
    """What POST /api/v1/vms does: a `vm.clone` operation of the template, enqueued."""
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    op = await submit(
        runtime, lambda s: request_clone(s, runtime.settings, template_id=template_id)
    )
    return op.id


async def derive_template(runtime: Runtime) -> str:
    """What POST /api/v1/templates with from_template_id does: a full clone, converted."""
    template_id = await add_template(runtime, *SHARED_TEMPLATE)
    op = await submit(
        runtime,
        lambda s: request_create_template(s, from_template_id=template_id, name="derived"),
    )
    return op.id


async def recovered_event_vm(runtime: Runtime) -> str:
    """One VM of an event whose deploy died, run again on its own (as recovery does)."""
    event_id = await make_event(runtime, "recov", 1, (SHARED_TEMPLATE,))
    (vm_id,) = await ensure_vms(runtime, event_id)
    async with transaction(runtime.sessions) as session:
        op = await OperationRepository(session).create(
            OperationKind.EVENT_VM_DEPLOY, "vm", vm_id, params={"start": False}
        )
    await runtime.queue.enqueue(op.id)
    return op.id


@pytest.mark.parametrize(
    "start",
    [post_vm, derive_template, recovered_event_vm],
    ids=["post-vm", "template-create", "recovered-event-vm"],
)
async def test_every_clone_path_waits_for_its_slot(
    sim: Simulator, tmp_path: Path, start: Start
) -> None:
    async with instance(sim, tmp_path / "one") as runtime:
        await waits_for_the_slot(sim, runtime, runtime, start)


async def test_an_event_deploy_takes_its_slot_once(sim: Simulator, tmp_path: Path) -> None:
    """With one slot per node and storage, a deploy that took it twice would never end."""
    from tests.events.kit import run

    worker = {"clones_per_storage": 1, "clones_per_node": 1, "full_clones_per_storage": 1}
    async with instance(sim, tmp_path / "one", **worker) as runtime:
        event_id = await make_event(runtime, "once", 3, (SHARED_TEMPLATE,))
        op = await run(runtime, "deploy", event_id)
        assert op.state == "succeeded", op.error_message
        assert set(op.result["clone_slots_peak"].values()) == {1}
        assert clone_posts(sim) == 3


async def test_two_instances_with_one_caps_key_share_the_budget(
    sim: Simulator, tmp_path: Path, redis_url: str
) -> None:
    """Production (queue and caps on Redis) and staging (embedded queue, caps on the
    same Redis through WORKER_CLONE_CAPS_REDIS_URL), both named `lab`: staging's clone
    waits while production holds the slot."""
    production = instance(sim, tmp_path / "a", redis_url, clone_caps_key="lab")
    staging = instance(
        sim, tmp_path / "b", clone_caps_key="lab", clone_caps_redis_url=SecretStr(redis_url)
    )
    async with production as prod, staging as stage:
        assert stage.settings.redis.url is None
        assert prod.caps.shared is not None
        assert stage.caps.shared is not None
        assert clone_caps_prefix(stage.settings) == "openvle:clone-slots:lab:"
        await waits_for_the_slot(sim, prod, stage, post_vm)
        await waits_for_the_slot(sim, stage, prod, post_vm)


async def test_instances_with_other_caps_keys_keep_their_own(
    sim: Simulator, tmp_path: Path, redis_url: str
) -> None:
    url = SecretStr(redis_url)
    production = instance(sim, tmp_path / "a", clone_caps_key="prod", clone_caps_redis_url=url)
    staging = instance(sim, tmp_path / "b", clone_caps_key="staging", clone_caps_redis_url=url)
    async with production as prod, staging as stage, ceph_slot_held(prod):
        before = clone_posts(sim)
        op = await wait_op(stage, await post_vm(stage))
        assert op.state == "succeeded", op.error_message
        assert clone_posts(sim) == before + 1
