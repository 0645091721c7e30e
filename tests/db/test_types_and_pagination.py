"""Column types and cursor helpers that need no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import mysql, sqlite

from openvle_core.db.errors import InvalidCursor
from openvle_core.db.pagination import MAX_LIMIT, clamp_limit, decode_cursor, encode_cursor
from openvle_core.db.types import UTCDateTime, new_id


def test_utc_datetime_stores_naive_utc_and_returns_aware() -> None:
    column = UTCDateTime()
    paris = datetime(2030, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    stored = column.process_bind_param(paris, sqlite.dialect())
    assert stored == datetime(2030, 1, 1, 12, 0)
    loaded = column.process_result_value(stored, sqlite.dialect())
    assert loaded == paris
    assert loaded is not None
    assert loaded.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2030, 1, 1), mysql.dialect())


def test_new_ids_are_uuid7_and_ordered() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}


@pytest.mark.parametrize("key", ["01a2-x", 42])
def test_cursor_round_trip(key: str | int) -> None:
    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("bad", ["", "!!!", "eyJ4IjoxfQ", "W10"])
def test_foreign_cursor_is_refused(bad: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(bad)


def test_limit_is_clamped() -> None:
    assert clamp_limit(None) == 50
    assert clamp_limit(0) == 1
    assert clamp_limit(10_000) == MAX_LIMIT
