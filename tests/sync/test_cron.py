"""The cron wrapper: one sync at a time (Redis lock, or in-process), and its arq spec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from openvle_core.metrics import REGISTRY
from openvle_core.sync.lock import lock_key, sync_lock
from openvle_worker.cron_sync import SKIPPED, SYNC_JOB_NAME, sync_cron, sync_tick
from tests.sync.kit import Harness


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_tick_runs_the_sync_and_returns_its_counts(harness: Harness) -> None:
    counts = await sync_tick({"runtime": harness})
    assert counts["ok"] is True
    assert counts["pool_guests"] == len(harness.sim.cluster.pools["OpenVLE-VMs"].vms)


async def test_overlapping_ticks_in_one_process_run_once(harness: Harness) -> None:
    first, second = await asyncio.gather(
        sync_tick({"runtime": harness}), sync_tick({"runtime": harness})
    )
    assert sorted(["not_run" in first, "not_run" in second]) == [False, True]
    assert "not_run" not in await sync_tick({"runtime": harness})  # free again


async def test_a_held_redis_lock_skips_the_tick(harness: Harness, redis: Redis) -> None:
    key = lock_key(harness.settings)
    await redis.set(key, "another-worker", ex=60)
    try:
        assert await sync_tick({"runtime": harness, "redis": redis}) == SKIPPED
    finally:
        await redis.delete(key)
    counts = await sync_tick({"runtime": harness, "redis": redis})
    assert counts["ok"] is True
    assert await redis.get(key) is None  # released after the run


async def test_overlapping_ticks_across_workers_run_once(harness: Harness, redis: Redis) -> None:
    results = await asyncio.gather(
        *(sync_tick({"runtime": harness, "redis": redis}) for _ in range(3))
    )
    assert sum("not_run" not in r for r in results) == 1


def test_the_cron_spec_is_unique_and_follows_the_interval(harness: Harness) -> None:
    job = sync_cron(harness.settings)
    assert job.name == SYNC_JOB_NAME
    assert job.unique is True
    assert job.second == 0
    assert job.minute == set(range(60))  # WORKER_PVE_PERIODIC_INTERVAL defaults to 60 s
    assert job.keep_result_s >= 60  # a late worker finds the result and does not re-run


async def test_the_redis_lock_waits_its_turn_or_gives_up(harness: Harness, redis: Redis) -> None:
    key = lock_key(harness.settings)
    await redis.set(key, "another-worker", ex=60)
    async with sync_lock(redis, harness.settings, wait=0.3) as acquired:
        assert acquired is False  # still held after the wait

    async def other_worker_finishes() -> None:
        await asyncio.sleep(0.2)
        await redis.delete(key)

    finishing = asyncio.create_task(other_worker_finishes())
    async with sync_lock(redis, harness.settings, wait=30) as acquired:
        assert acquired is True
        assert await redis.get(key) not in {None, b"another-worker"}
    await finishing
    assert await redis.get(key) is None


async def test_a_sync_outliving_its_first_lease_keeps_the_lock(
    harness: Harness, redis: Redis
) -> None:
    """The lease (0.5 s here) is renewed while the holder runs: for four leases, every
    other sync attempt is skipped, and the key keeps the holder's token."""
    key = lock_key(harness.settings)
    async with sync_lock(redis, harness.settings, lease=0.5) as held:
        assert held is True
        token = await redis.get(key)
        for _ in range(4):
            await asyncio.sleep(0.5)  # one whole lease: without renewal the key is gone
            assert await sync_tick({"runtime": harness, "redis": redis}) == SKIPPED
            assert await redis.get(key) == token
            assert 0 < await redis.pttl(key) <= 500
    assert await redis.get(key) is None  # released at the end
    assert "not_run" not in await sync_tick({"runtime": harness, "redis": redis})


async def test_a_lost_lock_is_logged_and_counted(
    harness: Harness, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    key = lock_key(harness.settings)
    lost = REGISTRY.get_sample_value("openvle_sync_lock_lost_total") or 0.0
    async with sync_lock(redis, harness.settings, lease=0.3) as held:
        assert held is True
        await redis.set(key, "someone-else")  # Redis lost our key; another took it
        for _ in range(100):
            if REGISTRY.get_sample_value("openvle_sync_lock_lost_total") == lost + 1:
                break
            await asyncio.sleep(0.05)
    assert REGISTRY.get_sample_value("openvle_sync_lock_lost_total") == lost + 1
    assert await redis.get(key) == b"someone-else"  # never deleted someone else's lock
    assert any("lost while the sync ran" in r.getMessage() for r in caplog.records)
    await redis.delete(key)
