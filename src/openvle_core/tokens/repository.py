"""All SQL about API tokens. Only hashes are stored; the secret leaves once, at creation."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import TokenScope
from openvle_core.db.models import ApiToken
from openvle_core.db.types import utcnow
from openvle_core.tokens.errors import TokenNotFound

TOKEN_PREFIX = "ovl_"


def generate_token() -> str:
    """A new random bearer token (`ovl_` + 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest we store and look up (tokens are random: no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenRepository:
    """API token rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, name: str, scope: TokenScope, *, expires_at: datetime | None = None
    ) -> tuple[ApiToken, str]:
        """Stage a new token; returns the row and the plain token (shown once)."""
        plain = generate_token()
        row = ApiToken(
            name=name,
            scope=scope.value,
            token_hash=hash_token(plain),
            prefix=plain[:12],
            expires_at=expires_at,
        )
        self.session.add(row)
        await self.session.flush()
        return row, plain

    async def find_active(self, plain: str, now: datetime | None = None) -> ApiToken | None:
        """The unrevoked, unexpired token matching `plain`, or None."""
        row = await self.session.scalar(
            select(ApiToken).where(ApiToken.token_hash == hash_token(plain))
        )
        moment = now or utcnow()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= moment:
            return None
        return row

    async def list(self) -> Sequence[ApiToken]:
        """Every token, oldest first (hashes stay inside; callers show name/prefix/scope)."""
        return (await self.session.scalars(select(ApiToken).order_by(ApiToken.id))).all()

    async def revoke(self, token_id: str) -> ApiToken:
        """Revoke a token; TokenNotFound if there is none with that id."""
        row = await self.session.get(ApiToken, token_id)
        if row is None:
            raise TokenNotFound(f"API token {token_id} not found")
        row.revoked_at = row.revoked_at or utcnow()
        await self.session.flush()
        return row

    async def touch(self, token_id: str, when: datetime | None = None) -> None:
        """Record a use (cheap UPDATE, no load)."""
        stmt = update(ApiToken).where(ApiToken.id == token_id)
        await self.session.execute(stmt.values(last_used_at=when or utcnow()))
