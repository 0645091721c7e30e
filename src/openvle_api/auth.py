"""Bearer-token authentication with a short positive cache.

Looking a token up costs a query, and recording its use a write; both are cheap but
not free on every request, so an accepted token is remembered for `ttl` seconds
(revocation in another process takes effect within that time) and its use is written
at most once per `touch_every` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.enums import TokenScope
from openvle_core.db.types import utcnow
from openvle_core.tokens import service as tokens
from openvle_core.tokens.repository import hash_token

DEFAULT_TTL = 5.0
TOUCH_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, name and scope."""

    token_id: str
    name: str
    scope: TokenScope


@dataclass(slots=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None
    cached_at: float
    touched_at: float


class Authenticator:
    """Resolves a plain bearer token to a Principal (None when it is not valid)."""

    def __init__(self, ttl: float = DEFAULT_TTL, touch_every: float = TOUCH_EVERY) -> None:
        self.ttl = ttl
        self.touch_every = touch_every
        self._cache: dict[str, _Entry] = {}

    def peek(self, plain: str) -> Principal | None:
        """The cached principal for `plain` if no database work is due (no lookup, no touch).

        None means: call `resolve` (the token may still be valid).
        """
        entry = self._cache.get(hash_token(plain))
        if entry is None:
            return None
        now = time.monotonic()
        if now - entry.cached_at >= self.ttl or now - entry.touched_at >= self.touch_every:
            return None
        return entry.principal if _unexpired(entry) else None

    async def resolve(
        self,
        session: AsyncSession,
        plain: str,
        writer: async_sessionmaker[AsyncSession] | None = None,
    ) -> Principal | None:
        """The principal for `plain`, from the cache or `session`.

        The use is recorded through `session`, or, when the request's session is
        read-only, in a short transaction of its own from `writer`.
        """
        key = hash_token(plain)
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is not None and now - entry.cached_at < self.ttl and _unexpired(entry):
            await self._touch(session, writer, entry, now)
            return entry.principal
        row = await tokens.authenticate(session, plain)
        if row is None:
            self._cache.pop(key, None)
            return None
        principal = Principal(row.id, row.name, TokenScope(row.scope))
        fresh = _Entry(principal, row.expires_at, now, entry.touched_at if entry else -1e18)
        self._cache[key] = fresh
        await self._touch(session, writer, fresh, now)
        return principal

    async def _touch(
        self,
        session: AsyncSession,
        writer: async_sessionmaker[AsyncSession] | None,
        entry: _Entry,
        now: float,
    ) -> None:
        if now - entry.touched_at < self.touch_every:
            return
        entry.touched_at = now
        if writer is None:
            await tokens.record_use(session, entry.principal.token_id)
            return
        async with writer() as own, own.begin():
            await tokens.record_use(own, entry.principal.token_id)


def _unexpired(entry: _Entry) -> bool:
    return entry.expires_at is None or entry.expires_at > utcnow()
