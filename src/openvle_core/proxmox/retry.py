"""The one place the client retries: transient errors only, with jittered backoff.

GETs are idempotent and retry on any `ProxmoxUnavailable`. A write (POST/PUT/DELETE) is
retried only when the error proves the request did nothing (`retry_safe`: a connect
error before the request was sent, or PVE's synchronous `can't lock file` refusal).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from openvle_core.proxmox.errors import ProxmoxUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds: at most `attempts` tries and `total_time` seconds including the waits."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    total_time: float = 20.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for retry number `retry` (0-based)."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**retry))


def should_retry(error: ProxmoxUnavailable, *, idempotent: bool) -> bool:
    """GETs retry every transient error; writes only those that prove nothing happened."""
    return idempotent or error.retry_safe


async def call_with_retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    on_retry: Callable[[ProxmoxUnavailable], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Run `attempt` until it succeeds, raises a non-retryable error, or a bound is hit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.total_time
    rng = rng or random.Random()
    for retry in range(policy.attempts):
        try:
            return await attempt()
        except ProxmoxUnavailable as exc:
            wait = policy.delay(retry, rng)
            last_try = retry + 1 >= policy.attempts
            if last_try or not should_retry(exc, idempotent=idempotent):
                raise
            if loop.time() + wait > deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")
