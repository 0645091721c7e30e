"""A real `openvle worker` process rides out Redis going away for 8 s in the middle of an
event deploy: it does not exit, logs the outage once (and its end once), finishes the
deploy (each VM exactly once on the simulator, every row there), writes the job's
bookkeeping once Redis is back, and picks up work queued while it could not see Redis.

Redis is cut by a TCP proxy the test owns (the machine's Redis keeps running for the
other tests); the test itself talks to Redis directly, so it can queue work the worker
cannot see during the outage. The simulator runs in this test process (its clone tasks
are held with the task gate until the outage began).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url

from openvle_core.availability import REDIS
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation, Vm
from openvle_core.db.session import transaction
from openvle_core.events import service as events
from openvle_core.handlers import run_operation
from openvle_core.metrics import REGISTRY
from openvle_core.queue import ArqQueue
from openvle_core.runtime import Runtime, open_runtime
from openvle_core.vms.service import request_clone
from openvle_pvesim import Simulator, run_simulator
from openvle_worker.resilience import ResilientWorker, connect, polling_problem, worker_ready
from openvle_worker.worker import arq_settings
from tests.events.kit import (
    DEBIAN,
    event_vms,
    make_event,
    pool_guests,
    tasks_of,
    template_id,
)
from tests.support.proxy import TcpProxy, split_host, tcp_proxy
from tests.support.services import REDIS_HOST
from tests.vms.kit import make_settings, sqlite_url
from tests.worker.test_crash import op_row, until, worker_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]
OUTAGE_S = 8.0
PARTICIPANTS = 3


async def children(runtime: Runtime, parent_id: str) -> list[Operation]:
    async with transaction(runtime.sessions) as session:
        rows = await session.scalars(select(Operation).where(Operation.parent_id == parent_id))
        return list(rows.all())


async def op_jobs(redis_url: str, op_ids: list[str]) -> list[str]:
    """arq jobs of these operations still in the queue (the Redis database is the whole
    run's: other tests may leave jobs of theirs)."""
    client = Redis.from_url(redis_url)
    prefixes = tuple(f"op:{op_id}:".encode() for op_id in op_ids)
    try:
        return [
            j.decode() for j in await client.zrange("arq:queue", 0, -1) if j.startswith(prefixes)
        ]
    finally:
        await client.aclose()


async def test_worker_rides_out_a_redis_outage_during_a_deploy(
    redis_url: str, tmp_path: Path
) -> None:
    database = sqlite_url(tmp_path)
    await upgrade_to_head(database)
    index = make_url(redis_url).database
    async with (
        run_simulator(version="9.1", time_scale=0.01) as sim,
        tcp_proxy(*split_host(REDIS_HOST)) as proxy,
    ):
        env = worker_env(sim, database, f"redis://127.0.0.1:{proxy.port}/{index}")
        env["WORKER_RETRY_BACKOFF_SCALE"] = "0.5"  # transient retries outlast the outage
        settings = make_settings(sim, database)
        log_path = tmp_path / "worker.log"
        worker = start_worker(env, tmp_path, log_path)
        queue = await ArqQueue.connect(redis_url)  # the test's own way in, past the proxy
        try:
            async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
                op_ids = await scenario(runtime, sim, proxy, queue, worker)
            assert worker.poll() is None, "the worker exited"
            assert await until(lambda: _no_jobs(redis_url, op_ids)) is True  # bookkeeping done
            lines = log_path.read_text().splitlines()
            assert sum("redis unavailable" in line for line in lines) == 1, lines
            assert sum("redis available again" in line for line in lines) == 1, lines
            assert not any("Traceback" in line for line in lines), lines
        finally:
            sim.cluster.tasks.gate.set()
            await queue.close()
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()


def start_worker(env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`openvle worker` in a process of its own, its output in `log_path`."""
    exe = str(Path(sys.executable).with_name("openvle"))
    with log_path.open("wb") as log:
        return subprocess.Popen([exe, "worker"], env=env, cwd=cwd, stdout=log, stderr=log)


async def _no_jobs(redis_url: str, op_ids: list[str]) -> bool:
    return not await op_jobs(redis_url, op_ids)


async def scenario(
    runtime: Runtime,
    sim: Simulator,
    proxy: TcpProxy,
    queue: ArqQueue,
    worker: subprocess.Popen[bytes],
) -> list[str]:
    """Deploy, cut Redis for 8 s in the middle, check the outcome; the operations' ids."""
    before = set(pool_guests(sim))
    event_id = await make_event(runtime, "outage", PARTICIPANTS, templates=(DEBIAN,))
    debian = await template_id(runtime, *DEBIAN)
    sim.cluster.tasks.gate.clear()  # clone tasks hang until the outage began
    async with transaction(runtime.sessions) as session:  # as the API does, then queued
        deploy = await events.request_deploy(session, runtime.settings, event_id)
    await queue.enqueue(deploy.id)  # straight into Redis (the test's runtime runs nothing)

    async def clones_running() -> bool:
        kids = await children(runtime, deploy.id)
        started = [k for k in kids if (k.result or {}).get("clone_upid")]
        return len(started) == PARTICIPANTS

    await until(clones_running)
    await proxy.pause()  # Redis gone: the worker's polls, slot renewals, bookkeeping fail
    loop = asyncio.get_running_loop()
    cut_at = loop.time()
    async with transaction(runtime.sessions) as session:  # work queued during the outage
        late = await request_clone(session, runtime.settings, template_id=debian, name="late")
    await queue.enqueue(late.id)
    await asyncio.sleep(2.0)
    sim.cluster.tasks.gate.set()  # the deploy goes on (Proxmox, database) without Redis
    await asyncio.sleep(max(0.0, OUTAGE_S - (loop.time() - cut_at)))
    assert worker.poll() is None, "the worker exited during the outage"
    assert (await op_row(runtime, late.id)).state == "queued"  # it could not see the job
    await proxy.resume()

    async def finished(op_id: str) -> Operation | None:
        op = await op_row(runtime, op_id)
        return op if op.state in {"succeeded", "failed"} else None

    done = await until(lambda: finished(deploy.id), timeout=180)
    assert done.state == "succeeded", done.error_message
    cloned = await until(lambda: finished(late.id), timeout=180)
    assert cloned.state == "succeeded", cloned.error_message

    kids = await children(runtime, deploy.id)
    assert len(kids) == PARTICIPANTS
    assert all(k.state == "succeeded" for k in kids)
    vms = await event_vms(runtime, event_id)
    assert len(vms) == PARTICIPANTS  # no row lost
    ours = {vmid: g.name for vmid, g in pool_guests(sim).items() if vmid not in before}
    assert sorted(ours) == sorted([*(v.vmid for v in vms), cloned_vmid(vms, ours)])
    assert {v.vmid: v.name for v in vms}.items() <= ours.items()
    assert Counter(ours.values()).most_common(1)[0][1] == 1  # no name twice
    assert tasks_of(sim, "qmclone") == PARTICIPANTS + 1  # each VM cloned exactly once
    async with transaction(runtime.sessions) as session:
        rows = list((await session.scalars(select(Vm))).all())
    assert len(rows) == PARTICIPANTS + 1
    return [deploy.id, late.id]


def cloned_vmid(vms: list[Vm], ours: dict[int, str]) -> int:
    extra = set(ours) - {v.vmid for v in vms}
    assert len(extra) == 1
    return extra.pop()


async def test_worker_ready_follows_redis_and_a_start_waits_for_it(
    redis_url: str, tmp_path: Path
) -> None:
    """`worker_ready()` (what the worker's readiness probe reports) and the gauge go down
    with Redis and up again; a worker started while Redis is away waits for it."""
    database = sqlite_url(tmp_path)
    await upgrade_to_head(database)
    index = make_url(redis_url).database
    async with (
        run_simulator(version="9.1", time_scale=0.0) as sim,
        tcp_proxy(*split_host(REDIS_HOST)) as proxy,
    ):
        settings = make_settings(sim, database, redis_url=f"redis://127.0.0.1:{proxy.port}/{index}")
        options = arq_settings(settings, lease_seconds=1.0)
        REDIS.restored()  # whatever an earlier test left in this process
        await proxy.pause()
        connecting = asyncio.create_task(connect(options["redis_settings"]))
        await until(lambda: _outage_seen())
        assert not connecting.done()  # waiting, not failed
        await proxy.resume()
        pool = await connecting
        worker = ResilientWorker(
            **{**options, "handle_signals": False, "poll_delay": 0.05}, redis_pool=pool
        )
        assert not worker_ready()  # not polled yet
        assert polling_problem() == (
            "the worker has not polled Redis yet (starting, or Redis is away)"
        )
        task = asyncio.create_task(worker.main())
        try:
            await until(lambda: _ready(True))
            assert polling_problem() is None
            await proxy.pause()
            await until(lambda: _ready(False))
            assert polling_problem() == "the worker's poll of Redis fails; it retries"
            assert redis_up() == 0
            assert not task.done()
            await proxy.resume()
            await until(lambda: _ready(True))
            assert redis_up() == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.close()


def redis_up() -> float | None:
    return REGISTRY.get_sample_value("openvle_dependency_up", {"dependency": "redis"})


async def _outage_seen() -> bool:
    return not REDIS.available


async def _ready(wanted: bool) -> bool:
    return worker_ready() is wanted
