"""The cluster-resource snapshot: a port and two adapters (MongoDB, SQL)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.settings import MongoSettings
from openvle_core.snapshot.mongo import MongoSnapshotStore
from openvle_core.snapshot.port import ReplaceResult, Resource, SnapshotStore
from openvle_core.snapshot.sql import SqlSnapshotStore

__all__ = [
    "MongoSnapshotStore",
    "ReplaceResult",
    "Resource",
    "SnapshotStore",
    "SqlSnapshotStore",
    "create_snapshot_store",
]


def create_snapshot_store(
    mongodb: MongoSettings, sessions: async_sessionmaker[AsyncSession]
) -> SnapshotStore:
    """MongoDB when MONGODB_URL is set, else the SQL database the sessions use."""
    if mongodb.url is None:
        return SqlSnapshotStore(sessions)
    return MongoSnapshotStore.from_url(mongodb.url.get_secret_value(), mongodb.database)
