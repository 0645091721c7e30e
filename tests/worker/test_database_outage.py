"""The worker's periodic jobs while the database is cut (a TCP proxy the test owns in
front of MariaDB): the sync fails with its reason in the result, the recovery scan and
the event schedule skip their tick, nothing raises (no traceback per tick), the log says
once that the database went away and once that it is back, and the first sync after the
outage succeeds. The jobs are the ones arq's cron and the embedded scheduler call."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from openvle_core.availability import DATABASE
from openvle_core.events.schedule import events_tick
from openvle_core.handlers import run_operation
from openvle_core.metrics import REGISTRY
from openvle_core.runtime import open_runtime
from openvle_core.scheduler import recover_tick
from openvle_core.sync.tick import sync_tick
from openvle_pvesim import Simulator
from tests.support.proxy import mariadb_behind_proxy
from tests.vms.kit import make_settings

pytestmark = [pytest.mark.mariadb]
AVAILABILITY_LOG = "openvle_core.availability"


def database_up() -> float | None:
    return REGISTRY.get_sample_value("openvle_dependency_up", {"dependency": "database"})


async def test_periodic_jobs_ride_out_a_database_outage(
    sim: Simulator, mariadb_database_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with mariadb_behind_proxy(mariadb_database_factory, "wout") as (proxy, url):
        settings = make_settings(sim, url)
        async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
            ctx: dict[str, Any] = {"runtime": runtime}
            assert (await sync_tick(ctx))["ok"] is True
            caplog.clear()
            caplog.set_level(logging.INFO)

            await proxy.pause()
            synced = await sync_tick(ctx)
            assert synced["ok"] is False
            assert "OperationalError" in synced["error"]
            assert await recover_tick(ctx) == 0
            assert await events_tick(ctx) == {"ok": False, "not_run": "the database is unavailable"}
            assert (await sync_tick(ctx))["ok"] is False
            assert (DATABASE.available, database_up()) == (False, 0.0)
            said = [r.getMessage() for r in caplog.records if r.name == AVAILABILITY_LOG]
            assert [m.split(" (")[0] for m in said] == ["database unavailable"]
            assert [r.getMessage() for r in caplog.records if r.exc_info] == []

            await proxy.resume()
            assert (await sync_tick(ctx))["ok"] is True
            assert (await events_tick(ctx)).get("not_run") is None
            assert (DATABASE.available, database_up()) == (True, 1.0)
            said = [r.getMessage() for r in caplog.records if r.name == AVAILABILITY_LOG]
            assert said[-1].startswith("database available again after")
