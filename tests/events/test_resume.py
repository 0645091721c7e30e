"""A deploy whose worker died mid-clone is finished by the next worker, without twins;
and the production set-up (MariaDB, arq on Redis) deploys and archives the same way."""

from __future__ import annotations

import asyncio
from typing import Any

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.operations.lease import recover
from openvle_core.runtime import Runtime
from openvle_pvesim import Simulator
from tests.engine.kit import wait_op
from tests.events.kit import (
    DEBIAN,
    event_row,
    event_vms,
    make_event,
    pool_guests,
    request,
    run,
    runtime_factory,
    tasks_of,
)


async def _finish_with_recovery(runtime: Runtime, op_id: str) -> Operation:
    """Run the recovery scan (as the worker's cron does) until the operation finished."""
    for _ in range(60):
        await recover(runtime)
        try:
            return await wait_op(runtime, op_id, timeout=1.0)
        except AssertionError:
            continue
    raise AssertionError(f"operation {op_id} never finished")


async def test_the_next_worker_finishes_a_deploy_whose_worker_died(
    sim: Simulator, database_url: str
) -> None:
    workers = runtime_factory(sim, database_url, None)
    async with workers() as first:
        event_id = await make_event(first, "crash", 4, (DEBIAN,))
        sim.cluster.tasks.gate.clear()  # every clone task freezes half-way
        op = await request(first, "deploy", event_id)
        for _ in range(500):
            if tasks_of(sim, "qmclone") == 4:
                break
            await asyncio.sleep(0.02)
        assert tasks_of(sim, "qmclone") == 4
    # the first worker is gone (its jobs cancelled mid-wait); Proxmox goes on
    sim.cluster.tasks.gate.set()
    async with workers() as second:
        done = await _finish_with_recovery(second, op.id)

        assert done.state == "succeeded"
        assert tasks_of(sim, "qmclone") == 4  # the recorded clone tasks were waited for
        assert len(pool_guests(sim)) == 4
        assert {vm.status for vm in await event_vms(second, event_id)} == {"running"}


async def test_deploy_and_archive_on_mariadb_with_arq(
    sim: Simulator, mariadb_database_factory: Any, redis_url: str
) -> None:
    url = str(await mariadb_database_factory("events"))
    await upgrade_to_head(url)
    async with runtime_factory(sim, url, redis_url)() as runtime:
        event_id = await make_event(runtime, "arq_1", 2, (DEBIAN,))

        assert (await run(runtime, "deploy", event_id)).state == "succeeded"
        assert len(pool_guests(sim)) == 2
        assert (await run(runtime, "archive", event_id)).state == "succeeded"
        assert pool_guests(sim) == {}
        assert (await event_row(runtime, event_id)).status == "archived"
