"""RedisSlots on a real Redis: a cap, leases that renew while held and end when a holder dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from openvle_core.events.slots import RedisSlots

KEY = ("storage", "ceph")


@pytest.fixture
async def slots(redis_url: str) -> AsyncIterator[RedisSlots]:
    redis = Redis.from_url(redis_url)
    try:
        yield RedisSlots(redis, "test-slots:", lease=0.3)
    finally:
        await redis.delete("test-slots:storage:ceph")
        await redis.aclose()


async def test_a_full_slot_waits_until_a_holder_leaves(slots: RedisSlots) -> None:
    order: list[str] = []

    async def clone(name: str, seconds: float) -> None:
        async with slots.hold(KEY, 2):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)
            order.append(f"{name} out")

    first = asyncio.create_task(clone("a", 0.2))
    second = asyncio.create_task(clone("b", 0.2))
    await asyncio.sleep(0.05)
    await clone("c", 0)
    await asyncio.gather(first, second)
    assert order.index("c in") > min(order.index("a out"), order.index("b out"))
    assert await slots.redis.zcard(slots.name(KEY)) == 0


async def test_a_holder_keeps_its_slot_past_the_lease_by_renewing(slots: RedisSlots) -> None:
    async def take_it() -> None:
        async with slots.hold(KEY, 1):
            pytest.fail("took a slot that was held")

    async with slots.hold(KEY, 1):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(take_it(), 1.0)  # over three leases
    async with asyncio.timeout(5), slots.hold(KEY, 1):
        pass


async def test_a_dead_holder_s_slot_comes_back_after_its_lease(slots: RedisSlots) -> None:
    taken = await slots._take(keys=[slots.name(KEY)], args=["dead-worker", 1, slots.lease])
    assert taken == 1  # a holder that will never renew nor release
    async with asyncio.timeout(5), slots.hold(KEY, 1):
        members = await slots.redis.zrange(slots.name(KEY), 0, -1)
    assert b"dead-worker" not in members
