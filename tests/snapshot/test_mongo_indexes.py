"""The MongoDB adapter indexes the filtered fields: after the first write the `resources`
collection lists indexes on type, node and pool (read back by a separate client)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from openvle_core.snapshot import MongoSnapshotStore

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


async def test_the_first_write_creates_the_type_node_and_pool_indexes(mongodb_url: str) -> None:
    database = f"snap_idx_{secrets.token_hex(4)}"
    store = MongoSnapshotStore.from_url(mongodb_url, database)
    reader: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        resource = {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "pool": "P"}
        await store.replace_all([resource], T0)
        indexes = [index async for index in await reader[database]["resources"].list_indexes()]
    finally:
        await store.close()
        await reader.close()
    keys = sorted(tuple(index["key"].items()) for index in indexes)
    assert (("type", 1),) in keys
    assert (("node", 1),) in keys
    assert (("pool", 1),) in keys
