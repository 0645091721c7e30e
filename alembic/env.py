"""Alembic environment: async engines, one chain for MariaDB and SQLite.

`openvle_core.db.migrate` passes an open connection in `config.attributes["connection"]`
(it holds the migration lock on it); the `alembic` command line instead builds an engine
from `sqlalchemy.url` or DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from openvle_core.db.migrate_lock import include_name
from openvle_core.db.models import Base
from openvle_core.db.session import create_engine
from openvle_core.settings import DEFAULT_DATABASE_URL

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_configure)
            await conn.commit()
    finally:
        await engine.dispose()


def main() -> None:
    """Run against the given connection, else against the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DATABASE_URL", DEFAULT_DATABASE_URL
    )
    asyncio.run(_run_online(url))


main()
