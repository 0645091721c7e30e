"""The API's SQLite read engine: beside an open write transaction, inline connections."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from openvle_api.readdb import InlineConnection, create_read_engine
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Node
from openvle_core.db.session import create_engine, session_factory


async def test_reads_run_beside_a_writer_on_inline_connections(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}"
    await upgrade_to_head(url)
    writer, reader = create_engine(url), create_read_engine(url)
    try:
        async with session_factory(writer)() as session, session.begin():
            session.add(Node(name="pve1"))
        readers = session_factory(reader)
        async with session_factory(writer)() as holding, holding.begin():
            holding.add(Node(name="pve2"))
            await holding.flush()  # holds the write lock (BEGIN IMMEDIATE) from here on
            async with readers() as session:
                names = (await session.scalars(select(Node.name))).all()
                raw = await (await session.connection()).get_raw_connection()
                assert isinstance(raw.driver_connection, InlineConnection)
        assert names == ["pve1"]  # the committed state, not the open transaction
        async with readers() as session:
            assert (await session.scalars(select(Node.name))).all() == ["pve1", "pve2"]
    finally:
        await writer.dispose()
        await reader.dispose()


def test_in_memory_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="SQLite file"):
        create_read_engine("sqlite+aiosqlite:///:memory:")
