"""Column types that behave the same on MariaDB and SQLite."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime stored as naive UTC (microseconds on MariaDB too).

    Naive values are refused on the way in, so local time never sneaks into the DB.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """JSON kept in a TEXT column: portable, and reflected identically by both backends."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


# An auto-incrementing 64-bit key (SQLite only auto-increments INTEGER PRIMARY KEY).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


_last: tuple[int, int] = (0, 0)
_id_lock = threading.Lock()


def new_id() -> str:
    """A UUIDv7 string: random, yet ordered by creation time (and monotonic within this
    process), so `ORDER BY id` is stable and chronological for cursor pagination."""
    global _last
    millis = time.time_ns() // 1_000_000
    with _id_lock:
        last_ms, last_seq = _last
        if millis > last_ms:
            seq = int.from_bytes(os.urandom(10), "big") >> 7  # 73 bits: room to count up
        else:
            millis, seq = last_ms, last_seq + 1
        _last = (millis, seq)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (seq >> 62) << 64
    value |= 0b10 << 62 | (seq & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
