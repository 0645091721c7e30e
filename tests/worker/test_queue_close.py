"""Closing the in-process queue ends every consumer, even one whose first cancel was
swallowed on its way (a library may do that when a cancel meets its own timeout or
cleanup): it then went back to waiting for work and the close waited for it forever."""

from __future__ import annotations

import asyncio

from openvle_core.queue import InProcessQueue


async def test_close_stops_a_consumer_whose_cancel_was_swallowed() -> None:
    queue = InProcessQueue(1)
    running = asyncio.Event()
    swallowed = 0

    async def runner(op_id: str) -> None:
        nonlocal swallowed
        running.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed += 1  # not re-raised: the consumer goes back to the queue

    queue.start(runner)
    await queue.enqueue("op-1")
    await running.wait()
    await asyncio.wait_for(queue.close(), timeout=60)  # a hang guard, not a timing check
    assert swallowed == 1
    assert queue.idle
