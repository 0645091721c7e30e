"""Keyset (cursor) pagination over one unique, ordered column.

Ids are UUIDv7 strings (time-ordered) or auto-increment integers, so `ORDER BY key` is
stable and cheap with any filter index. A cursor is the opaque, URL-safe last key seen.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from openvle_core.db.errors import InvalidCursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None at the end)."""

    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(key: str | int) -> str:
    """The opaque cursor for `key`."""
    raw = json.dumps({"k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | int:
    """The key inside `cursor`; InvalidCursor when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidCursor("the cursor is not valid for this list") from None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidCursor("the cursor is not valid for this list")
    return value


def clamp_limit(limit: int | None) -> int:
    """Apply the API's default (50) and ceiling (500)."""
    return DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))


async def paginate(
    session: AsyncSession,
    stmt: Select[T],
    key: InstrumentedAttribute[Any],
    *,
    limit: int | None,
    cursor: str | None,
    descending: bool = False,
) -> Page[T]:
    """Run `stmt` (an entity select with filters) one page at a time, ordered by `key`."""
    size = clamp_limit(limit)
    if cursor is not None:
        after = decode_cursor(cursor)
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(key.desc() if descending else key.asc()).limit(size + 1)
    rows = list((await session.scalars(stmt)).all())
    if len(rows) <= size:
        return Page(items=rows, next_cursor=None)
    last = getattr(rows[size - 1], key.key)
    return Page(items=rows[:size], next_cursor=encode_cursor(last))
