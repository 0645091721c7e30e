"""API tokens: create (the secret is shown once), list, revoke, and authenticate.

Only SHA-256 hashes are stored. Scopes are ordered: read < operate < admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import TokenScope
from openvle_core.db.models import ApiToken
from openvle_core.db.types import utcnow
from openvle_core.tokens.errors import InvalidTokenRequest
from openvle_core.tokens.repository import ApiTokenRepository

SCOPE_RANK = {TokenScope.READ: 0, TokenScope.OPERATE: 1, TokenScope.ADMIN: 2}


def scope_allows(held: TokenScope | str, needed: TokenScope) -> bool:
    """True when a token with scope `held` may do what needs `needed`."""
    return SCOPE_RANK[TokenScope(held)] >= SCOPE_RANK[needed]


async def create_token(
    session: AsyncSession, name: str, scope: TokenScope, *, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Stage a new token; returns the row and the plain secret (never stored, show once)."""
    if not name.strip() or len(name) > 64:
        raise InvalidTokenRequest("a token name is 1-64 characters")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidTokenRequest("the expiry must be in the future")
    return await ApiTokenRepository(session).create(name, scope, expires_at=expires_at)


async def list_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    """Every token, oldest first (rows hold hashes only)."""
    return await ApiTokenRepository(session).list()


async def revoke_token(session: AsyncSession, token_id: str) -> ApiToken:
    """Revoke a token by id (idempotent); TokenNotFound if there is none."""
    return await ApiTokenRepository(session).revoke(token_id)


async def authenticate(session: AsyncSession, plain: str) -> ApiToken | None:
    """The active token matching `plain`, or None (unknown, revoked or expired)."""
    return await ApiTokenRepository(session).find_active(plain)


async def record_use(session: AsyncSession, token_id: str) -> None:
    """Note that the token was used now (callers throttle this: it is a write)."""
    await ApiTokenRepository(session).touch(token_id)
