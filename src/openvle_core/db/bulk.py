"""Many rows updated by primary key in one statement each chunk, on SQLite and MariaDB.

SQLAlchemy's bulk update by primary key (`session.execute(update(Model), rows)`) is an
executemany, and neither aiosqlite nor asyncmy rewrite an `UPDATE` executemany: each
row is one statement and, on MariaDB, one round trip (about 100 per changed sync). Here
the rows become one `UPDATE ... SET col = CASE id WHEN :id THEN :value ... ELSE col END
... WHERE id IN (...)` per `CHUNK` rows: a row keeps every column it does not name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, case, literal, update
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.models import Base

# Rows per statement: with ~10 columns, about 10,000 bound values, below SQLite's
# 32,766 and far below MariaDB's 65,535 placeholders.
CHUNK = 500
# Each statement's shape depends on its rows (a CASE branch per row and column), so
# SQLAlchemy's compiled cache would keep one entry per shape seen: about 1 MB each at
# 150 rows, up to 500 entries per engine (`query_cache_size`), in a worker that runs
# for weeks. They are compiled each time instead (a few ms per changed sync).
UNCACHED = {"compiled_cache": None}


async def update_by_id(
    session: AsyncSession, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> int:
    """Apply each mapping (`id` plus the columns to set) to its row of `model`'s table;
    the rows given. Bypasses the session's identity map, like an executemany."""
    table = cast(Table, model.__table__)
    for start in range(0, len(rows), CHUNK):
        statement = _statement(table, rows[start : start + CHUNK])
        await session.execute(statement, execution_options=UNCACHED)
    return len(rows)


def _statement(table: Table, rows: Sequence[Mapping[str, Any]]) -> Any:
    """One UPDATE for `rows`: a column every row sets to one value is set plainly, any
    other through a CASE on the id (the rows that do not name it keep theirs)."""
    key = table.c.id
    names = sorted({name for row in rows for name in row} - {"id"})
    values: dict[str, Any] = {}
    for name in names:
        column = table.c[name]
        setting = [(row["id"], row[name]) for row in rows if name in row]
        distinct = {repr(v) for _id, v in setting}
        if len(setting) == len(rows) and len(distinct) == 1:
            values[name] = literal(setting[0][1], column.type)
            continue
        whens = {row_id: literal(value, column.type) for row_id, value in setting}
        values[name] = case(whens, value=key, else_=column)
    return update(table).where(key.in_([row["id"] for row in rows])).values(values)
