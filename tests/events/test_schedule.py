"""The lifecycle cron: deploy at the start (minus the lead time), archive after the end
plus the transition period; exactly once when several workers tick at the same moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.session import transaction
from openvle_core.events import service
from openvle_core.events.schedule import events_tick, run_schedule
from openvle_pvesim import Simulator
from tests.events.kit import (
    DEBIAN,
    MakeRuntime,
    event_row,
    make_event,
    pool_guests,
    runtime_factory,
    template_id,
)
from tests.vms.kit import wait_op

LEAD = {"event_lead_time": 900, "event_transition_period": 600}


@pytest.fixture(params=["sqlite", "mariadb"])
async def workers(
    request: pytest.FixtureRequest,
    sim: Simulator,
    database_url: str,
    mariadb_database_factory: Any,
) -> MakeRuntime:
    """Runtimes sharing one database, as separate workers would (in-process queues)."""
    if request.param == "sqlite":
        return runtime_factory(sim, database_url, None)
    url = str(await mariadb_database_factory("events"))
    await upgrade_to_head(url)
    return runtime_factory(sim, url, None)


async def test_two_workers_deploy_and_archive_each_due_event_once(
    workers: MakeRuntime, sim: Simulator
) -> None:
    now = datetime.now(UTC)
    async with workers(worker=LEAD) as one, workers(worker=LEAD) as two:
        started = await make_event(one, "start", 1, (DEBIAN,), starts_at=now - timedelta(minutes=1))
        soon = await make_event(one, "soon", 1, (DEBIAN,), starts_at=now + timedelta(minutes=10))
        later = await make_event(one, "later", 1, (DEBIAN,), starts_at=now + timedelta(hours=1))
        ended = await make_event(
            one,
            "ended",
            1,
            (DEBIAN,),
            starts_at=now - timedelta(hours=3),
            ends_at=now - timedelta(minutes=11),
        )
        fresh = await make_event(
            one,
            "fresh",
            1,
            (DEBIAN,),
            starts_at=now - timedelta(hours=3),
            ends_at=now - timedelta(minutes=9),
        )

        first, second = await asyncio.gather(run_schedule(one), run_schedule(two))

        deploys = {**first.deploys, **second.deploys}
        archives = {**first.archives, **second.archives}
        assert sorted(deploys) == sorted([started, soon])
        assert len(first.deploys) + len(second.deploys) == 2
        assert list(archives) == [ended]
        assert len(first.archives) + len(second.archives) == 1
        for op_id in [*deploys.values(), *archives.values()]:
            assert (await wait_op(one, op_id)).state == "succeeded"
        assert (await event_row(one, later)).status == "scheduled"
        assert (await event_row(one, fresh)).status == "scheduled"
        assert (await event_row(one, ended)).status == "archived"
        assert len(pool_guests(sim)) == 2

        again: Any = await events_tick({"runtime": two})

        assert again == {"deploys": {}, "archives": {}, "skipped": [], "refused": {}}


async def test_an_event_opened_while_running_is_deployed_at_once(
    make_runtime: MakeRuntime, sim: Simulator
) -> None:
    now = datetime.now(UTC)
    lead = timedelta(seconds=LEAD["event_lead_time"])
    async with make_runtime(worker=LEAD) as runtime:
        ids = [await template_id(runtime, *DEBIAN)]
        opened = {}
        for slug, start in [("inlead", now + timedelta(minutes=10)), ("later2", now + lead * 2)]:
            async with transaction(runtime.sessions) as session:
                opened[slug] = await service.open_event(
                    session,
                    runtime.settings,
                    slug=slug,
                    name=slug,
                    starts_at=start,
                    ends_at=start + timedelta(hours=2),
                    participants=1,
                    template_ids=ids,
                )
        deploy = opened["inlead"].deploy  # within the lead time: already due
        assert deploy is not None
        assert opened["later2"].deploy is None
        await runtime.queue.enqueue(deploy.id)
        assert (await wait_op(runtime, deploy.id)).state == "succeeded"
        assert (await event_row(runtime, opened["inlead"].view.event.id)).status == "deployed"
        tick = await run_schedule(runtime)
        assert (tick.deploys, tick.archives) == ({}, {})  # nothing left for the schedule
        assert len(pool_guests(sim)) == 1
