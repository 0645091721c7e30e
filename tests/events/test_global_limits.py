"""Clone caps hold across worker processes when Redis is configured (REDIS_URL).

Two runtimes on one MariaDB stand for two worker processes; each deploys its own event
from the same template on shared storage (ceph) at the same moment. The simulator is
watched for clone tasks running at once: with WORKER_CLONES_PER_STORAGE=2 and Redis
there are never more than 2; without Redis each process keeps its own 2, and the
cluster sees up to 4 (which also shows the watch can catch an excess).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.events.kit import DEBIAN, make_event, run
from tests.vms.kit import make_settings, open_fast_runtime

CAP = 2
# a linked clone's task runs about 0.5 s: the two deploys overlap even on a busy machine
SIM_TIME_SCALE = 0.6
WORKER = {"clones_per_storage": CAP, "clones_per_node": 16, "event_parallel_vms": 16}


@contextlib.asynccontextmanager
async def worker_process(
    sim: Simulator, database_url: str, redis_url: str | None
) -> AsyncIterator[Runtime]:
    """A runtime running its own operations, sharing the database (and Redis, if given)."""
    settings = make_settings(sim, database_url, redis_url=redis_url, worker=WORKER)
    opened = open_fast_runtime(settings)
    async with opened as runtime:
        yield runtime


def running_clones(sim: Simulator) -> int:
    return sum(
        1 for t in sim.cluster.tasks.tasks.values() if t.type == "qmclone" and t.status == "running"
    )


async def peak_of_two_deploys(sim: Simulator, database_url: str, redis_url: str | None) -> int:
    """Deploy two 5-VM events from two runtimes at once; the most clones seen running."""
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, running_clones(sim))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.002)

    async with (
        worker_process(sim, database_url, redis_url) as first,
        worker_process(sim, database_url, redis_url) as second,
    ):
        alpha = await make_event(first, "alpha", 5, (DEBIAN,))
        beta = await make_event(second, "beta", 5, (DEBIAN,))
        watcher = asyncio.create_task(watch())
        ops = await asyncio.gather(run(first, "deploy", alpha), run(second, "deploy", beta))
        done.set()
        await watcher
    assert [op.state for op in ops] == ["succeeded", "succeeded"]
    return peak


async def test_clone_caps_hold_across_workers_with_redis(
    sim: Simulator, mariadb_database_factory: Any, redis_url: str
) -> None:
    database_url = str(await mariadb_database_factory("limits"))
    await upgrade_to_head(database_url)

    peak = await peak_of_two_deploys(sim, database_url, redis_url)

    assert peak == CAP


async def test_without_redis_each_worker_keeps_its_own_caps(
    sim: Simulator, mariadb_database_factory: Any
) -> None:
    database_url = str(await mariadb_database_factory("limits"))
    await upgrade_to_head(database_url)

    peak = await peak_of_two_deploys(sim, database_url, None)

    assert peak > CAP
