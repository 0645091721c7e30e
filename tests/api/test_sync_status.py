"""GET /api/v1/system/sync: when the last sync (periodic or on demand) wrote the snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from openvle_pvesim import Simulator, run_simulator
from tests.api.kit import Api, sync


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Simulator]:
    """This module's own cluster, so no other test's sync ran before the first request."""
    async with run_simulator(version="9.1", tls=True, time_scale=0.0) as simulator:
        yield simulator


async def test_synced_at_is_null_then_the_last_sync(api: Api) -> None:
    before = await api.client.get("/api/v1/system/sync", headers=api.auth("read"))
    assert before.status_code == 200
    assert before.json() == {
        "synced_at": None,
        "interval_s": api.runtime.settings.worker.pve_periodic_interval,
    }
    started = datetime.now(UTC)
    await sync(api)  # what the periodic tick runs (it records no operation)
    after = (await api.client.get("/api/v1/system/sync", headers=api.auth("read"))).json()
    synced_at = datetime.fromisoformat(after["synced_at"])
    assert synced_at.tzinfo is not None
    assert synced_at >= started.replace(microsecond=0)
    assert (await api.client.get("/api/v1/system/sync")).status_code == 401
