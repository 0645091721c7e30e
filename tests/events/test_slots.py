"""RedisSlots on a real Redis: a cap, leases that renew while held and end when a holder dies."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from openvle_core.errors import TransientStep
from openvle_core.operations.retry import is_transient
from openvle_core.placement.slots import RedisSlots

KEY = ("storage", "ceph")


@pytest.fixture
async def slots(redis_url: str) -> AsyncIterator[RedisSlots]:
    redis = Redis.from_url(redis_url)
    try:
        yield RedisSlots(redis, "test-slots:", lease=0.6)
    finally:
        await redis.delete(*[key async for key in redis.scan_iter("test-slots:*")] or ["none"])
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
            await asyncio.wait_for(take_it(), 2.0)  # over three leases
    async with asyncio.timeout(5), slots.hold(KEY, 1):
        pass


async def test_a_dead_holder_s_slot_comes_back_after_its_lease(slots: RedisSlots) -> None:
    keys = [slots.name(KEY), "unused"]
    taken = await slots._take(keys=keys, args=["dead-worker", 1, slots.lease])
    assert taken == 1  # a holder that will never renew nor release
    async with asyncio.timeout(5), slots.hold(KEY, 1):
        members = await slots.redis.zrange(slots.name(KEY), 0, -1)
    assert b"dead-worker" not in members


async def test_a_lease_that_ran_out_is_not_renewed_over_the_new_holder(slots: RedisSlots) -> None:
    name = slots.name(KEY)
    assert await slots._take(keys=[name, "unused"], args=["stalled", 1, 0.1]) == 1
    await asyncio.sleep(0.2)  # its renewals did not reach Redis in time
    async with asyncio.timeout(5), slots.hold(KEY, 1):
        assert await slots._renew(keys=[name], args=["stalled", slots.lease]) == 0
        assert await slots.redis.zcard(name) == 1  # the cap holds: only the new holder


async def test_redis_unreachable_is_a_transient_step() -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        redis = Redis(port=bound.getsockname()[1], socket_connect_timeout=1)
        with pytest.raises(TransientStep, match="clone slots in Redis unavailable") as caught:
            async with RedisSlots(redis, "test-slots:").hold(KEY, 1):
                pytest.fail("held a slot without Redis")
        await redis.aclose()
    assert is_transient(caught.value)


async def test_a_take_cancelled_in_flight_leaves_no_holder(
    slots: RedisSlots, redis_url: str
) -> None:
    """Redis runs the take after the waiter gave up: the slot must come back at once."""
    slots = RedisSlots(slots.redis, slots.prefix, lease=30.0)  # no expiry within the test
    blocker = Redis.from_url(redis_url)
    await blocker.ping()  # connected and the take script loaded: only the call is left
    assert await slots._take(keys=["test-slots:warm", "unused"], args=["w", 1, 0.01]) == 1
    busy = asyncio.create_task(blocker.eval(BUSY_SCRIPT, 0))  # Redis busy for 0.3 s
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(hold_briefly(slots))
    await asyncio.sleep(0.1)
    waiter.cancel()
    await asyncio.wait([waiter, busy])
    await blocker.aclose()
    async with asyncio.timeout(5):
        while await slots.redis.zcard(slots.name(KEY)):  # noqa: ASYNC110  # polls Redis
            await asyncio.sleep(0.01)


BUSY_SCRIPT = """
local t = redis.call('TIME')
local stop = tonumber(t[1]) + tonumber(t[2]) / 1000000 + 0.3
repeat t = redis.call('TIME') until tonumber(t[1]) + tonumber(t[2]) / 1000000 > stop
return 1
"""


async def hold_briefly(slots: RedisSlots) -> None:
    async with slots.hold(KEY, 1):
        pass
