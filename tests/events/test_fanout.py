"""With arq (a queue shared by several workers) an event's VMs are spread over the workers.

Two arq workers consume one Redis queue on one MariaDB, as `openvle worker` processes do
(each its own Runtime). The handlers are wrapped to record which worker's Runtime ran
which operation: an event's child operations run on both workers, each VM once, and a
deploy whose parent's worker stops mid-deploy is finished by the next one without twins.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.db.session import transaction
from openvle_core.handlers import run_operation
from openvle_core.operations.kinds import KindSpec, OperationKind
from openvle_core.operations.lease import recover
from openvle_core.operations.repository import OperationRepository
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.events.kit import (
    DEBIAN,
    event_row,
    event_vms,
    make_event,
    pool_guests,
    request,
    run,
    tasks_of,
)
from tests.vms.kit import LEASE, make_settings, open_fast_runtime, wait_op

SIM_TIME_SCALE = 0.05  # a clone and a start take long enough for both workers to poll
Ran = list[tuple[str, str, str]]  # (kind, target id, worker name), one per handler call
SPREAD = (OperationKind.EVENT_DEPLOY, OperationKind.EVENT_VM_DEPLOY, OperationKind.EVENT_VM_ARCHIVE)


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Ran:
    """Every handler call of the event kinds, with the name of the worker that made it."""
    calls: Ran = []
    for kind in SPREAD:
        spec = run_operation.kinds[kind]

        async def handler(runtime: Runtime, op: Operation, _inner: Any = spec.handler) -> None:
            calls.append((op.kind, str(op.target_id), NAMES.get(id(runtime), "?")))
            await _inner(runtime, op)

        monkeypatch.setitem(run_operation.kinds, kind, KindSpec(handler, spec.on_failure))
    return calls


NAMES: dict[int, str] = {}  # id(worker's Runtime) -> its name


class Worker:
    """An arq worker in this process with its own Runtime (an `openvle worker`)."""

    def __init__(self, name: str, task: asyncio.Task[None], arq: Any) -> None:
        self.name, self.task, self.arq = name, task, arq

    async def stop(self) -> None:
        """Stop it as a dying process would stop: its running jobs cancelled."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        with contextlib.suppress(asyncio.CancelledError):  # close() gathers cancelled jobs
            await self.arq.close()


@contextlib.asynccontextmanager
async def worker(settings: Any, name: str, max_jobs: int) -> AsyncIterator[Worker]:
    from arq.worker import create_worker

    from openvle_core.redisconn import arq_settings
    from openvle_worker.worker import WorkerSettings, shutdown, startup, worker_pool

    redis = arq_settings(settings.redis)
    ctx: dict[str, Any] = {"settings": settings, "lease_seconds": LEASE}
    arq = create_worker(
        {"functions": WorkerSettings.functions, "on_startup": startup, "on_shutdown": shutdown},
        redis_settings=redis,
        redis_pool=await worker_pool(redis),
        ctx=ctx,
        handle_signals=False,
        poll_delay=0.05,
        max_jobs=max_jobs,
    )
    handle = Worker(name, asyncio.create_task(arq.main()), arq)
    for _ in range(500):
        if "runtime" in ctx:
            break
        await asyncio.sleep(0.01)
    NAMES[id(ctx["runtime"])] = name
    try:
        yield handle
    finally:
        if not handle.task.done():
            await handle.stop()


@contextlib.asynccontextmanager
async def requester(settings: Any) -> AsyncIterator[Runtime]:
    """The API's side: stages operations and enqueues them in Redis; runs nothing."""
    opened = open_fast_runtime(settings, in_process=False)
    async with opened as runtime:
        yield runtime


async def children(runtime: Runtime, parent_id: str) -> list[Operation]:
    async with transaction(runtime.sessions) as session:
        return list(await OperationRepository(session).children(parent_id))


def by_worker(calls: Ran, kind: OperationKind) -> dict[str, int]:
    return dict(collections.Counter(name for k, _, name in calls if k == kind))


async def test_an_events_vms_run_on_both_workers_once_each(
    sim: Simulator, mariadb_database_factory: Any, redis_url: str, ran: Ran
) -> None:
    url = str(await mariadb_database_factory("fanout"))
    await upgrade_to_head(url)
    settings = make_settings(sim, url, redis_url=redis_url, worker={"event_parallel_vms": 6})
    async with (
        requester(settings) as api,
        worker(settings, "a", max_jobs=2),
        worker(settings, "b", max_jobs=2),
    ):
        event_id = await make_event(api, "fanout", 6, (DEBIAN,))

        op = await run(api, "deploy", event_id)

        assert op.state == "succeeded", op.error_message
        rows = await children(api, op.id)
        vms = await event_vms(api, event_id)
        assert sorted(c.target_id or "" for c in rows) == sorted(vm.id for vm in vms)
        assert {c.state for c in rows} == {"succeeded"}
        deploys = [t for k, t, _ in ran if k == OperationKind.EVENT_VM_DEPLOY]
        assert collections.Counter(deploys) == {vm.id: 1 for vm in vms}  # each VM once
        assert set(by_worker(ran, OperationKind.EVENT_VM_DEPLOY)) == {"a", "b"}
        assert tasks_of(sim, "qmclone") == 6
        assert {vm.status for vm in vms} == {"running"}
        assert op.progress_done == op.progress_total == 6

        archive = await run(api, "archive", event_id)

        assert archive.state == "succeeded", archive.error_message
        assert set(by_worker(ran, OperationKind.EVENT_VM_ARCHIVE)) == {"a", "b"}
        assert pool_guests(sim) == {}
        assert (await event_row(api, event_id)).status == "archived"


async def test_a_deploy_whose_parents_worker_stops_is_finished_without_twins(
    sim: Simulator, mariadb_database_factory: Any, redis_url: str, ran: Ran
) -> None:
    url = str(await mariadb_database_factory("fancrash"))
    await upgrade_to_head(url)
    settings = make_settings(sim, url, redis_url=redis_url, worker={"event_parallel_vms": 6})
    async with (
        requester(settings) as api,
        worker(settings, "a", max_jobs=3) as a,
        worker(settings, "b", max_jobs=3) as b,
    ):
        event_id = await make_event(api, "fancr", 6, (DEBIAN,))
        sim.cluster.tasks.gate.clear()  # every clone task freezes half-way
        op = await request(api, "deploy", event_id)
        for _ in range(1000):  # 5 children on the workers' slots, the 6th in the parent
            if tasks_of(sim, "qmclone") == 6:
                break
            await asyncio.sleep(0.02)
        assert tasks_of(sim, "qmclone") == 6
        (parent_worker,) = {n for k, _, n in ran if k == OperationKind.EVENT_DEPLOY}
        assert set(by_worker(ran, OperationKind.EVENT_VM_DEPLOY)) == {"a", "b"}
        dying, surviving = (a, b) if parent_worker == "a" else (b, a)

        await dying.stop()  # the parent and its worker's children stop mid-clone
        sim.cluster.tasks.gate.set()
        async with worker(settings, "c", max_jobs=3):
            done: Operation | None = None
            for _ in range(60):  # the workers' recovery cron, run here
                await recover(api)
                with contextlib.suppress(AssertionError):
                    done = await wait_op(api, op.id, timeout=1.0)
                    break

        assert done is not None
        assert done.state == "succeeded", done.error_message
        rows = await children(api, op.id)
        vms = await event_vms(api, event_id)
        assert sorted(c.target_id or "" for c in rows) == sorted(vm.id for vm in vms)  # no twin
        assert {c.state for c in rows} == {"succeeded"}
        assert tasks_of(sim, "qmclone") == 6  # the clones in flight were waited for
        assert len(pool_guests(sim)) == 6
        assert {vm.status for vm in vms} == {"running"}
        resumed = [n for k, _, n in ran if k == OperationKind.EVENT_DEPLOY]
        assert resumed[0] == parent_worker
        assert resumed[1:]  # run again, by a live worker
        assert dying.name not in resumed[1:]
        assert surviving.name in {n for _, _, n in ran}
