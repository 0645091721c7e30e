"""One contract, every SnapshotStore adapter: SQL on SQLite and MariaDB, and MongoDB
(the nx-27017 wire server)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import SnapshotMeta, SnapshotResource
from openvle_core.db.session import create_engine, session_factory
from openvle_core.settings import MongoSettings
from openvle_core.snapshot import (
    MongoSnapshotStore,
    SnapshotStore,
    SqlSnapshotStore,
    create_snapshot_store,
)
from openvle_core.snapshot.errors import InvalidResource

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def vm(vmid: int, **extra: Any) -> dict[str, Any]:
    """A /cluster/resources qemu entry."""
    base = {"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": "pve1"}
    return {**base, "status": "running", "pool": "OpenVLE-VMs", "maxmem": 2**31, **extra}


NODES = [{"id": "node/pve1", "type": "node", "node": "pve1", "status": "online", "cpu": 0.25}]


async def _sql_store(url: str) -> AsyncIterator[SnapshotStore]:
    await upgrade_to_head(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(delete(SnapshotResource))
        await session.execute(delete(SnapshotMeta))
    yield SqlSnapshotStore(sessions)
    await engine.dispose()


@pytest.fixture(params=["sql-sqlite", "sql-mariadb", "mongo"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, mariadb_database_factory: Any
) -> AsyncIterator[SnapshotStore]:
    """A fresh, empty store of each adapter."""
    if request.param == "mongo":
        url = request.getfixturevalue("mongodb_url")
        mongo = MongoSnapshotStore.from_url(url, f"snap_{secrets.token_hex(4)}")
        yield mongo
        await mongo.close()
        return
    if request.param == "sql-sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'snap.sqlite3'}"
    else:
        url = await mariadb_database_factory("snap")
    async for sql in _sql_store(url):
        yield sql


async def test_empty_store(store: SnapshotStore) -> None:
    await store.ping()
    assert await store.synced_at() is None
    assert await store.get("qemu/100") is None
    assert await store.list() == []


async def test_replace_all_round_trips_resources(store: SnapshotStore) -> None:
    resources = [vm(101), vm(100, status="stopped"), *NODES]
    result = await store.replace_all(resources, T0)
    assert (result.written, result.removed, result.unchanged) == (3, 0, 0)
    assert await store.get("qemu/100") == vm(100, status="stopped")
    assert await store.get("node/pve1") == NODES[0]
    assert [r["id"] for r in await store.list()] == ["node/pve1", "qemu/100", "qemu/101"]
    assert await store.synced_at() == T0


async def test_filters_by_type_node_and_pool(store: SnapshotStore) -> None:
    resources = [vm(100), vm(101, node="pve2"), vm(102, pool=None), *NODES]
    await store.replace_all(resources, T0)
    assert [r["id"] for r in await store.list(type="qemu")] == ["qemu/100", "qemu/101", "qemu/102"]
    assert [r["id"] for r in await store.list(node="pve2")] == ["qemu/101"]
    assert [r["id"] for r in await store.list(type="qemu", node="pve1", pool="OpenVLE-VMs")] == [
        "qemu/100"
    ]
    assert [r["id"] for r in await store.list(type="node")] == ["node/pve1"]


async def test_second_sync_writes_only_changes_and_removes_vanished(
    store: SnapshotStore,
) -> None:
    await store.replace_all([vm(i) for i in range(100, 150)], T0)
    later = T0 + timedelta(seconds=60)
    current = [vm(i) for i in range(100, 148)]
    current[20] = vm(120, status="stopped", node="pve2")
    current.append(vm(200))
    result = await store.replace_all(current, later)
    assert (result.written, result.removed, result.unchanged) == (2, 2, 47)
    assert await store.get("qemu/148") is None
    assert await store.get("qemu/120") == vm(120, status="stopped", node="pve2")
    assert len(await store.list()) == 49
    assert await store.synced_at() == later


async def test_a_fresh_adapter_instance_sees_the_stored_state(store: SnapshotStore) -> None:
    """Another replica (no shared memory) must diff against what is stored, not nothing."""
    await store.replace_all([vm(100), vm(101)], T0)
    other = _twin(store)
    result = await other.replace_all([vm(100)], T0 + timedelta(seconds=1))
    assert (result.written, result.removed, result.unchanged) == (0, 1, 1)
    # and the first instance notices the foreign write instead of trusting its memory
    result = await store.replace_all([vm(100), vm(101)], T0 + timedelta(seconds=2))
    assert (result.written, result.removed, result.unchanged) == (1, 0, 1)
    assert [r["id"] for r in await other.list()] == ["qemu/100", "qemu/101"]


async def test_resource_without_id_is_refused(store: SnapshotStore) -> None:
    with pytest.raises(InvalidResource):
        await store.replace_all([{"type": "qemu", "vmid": 1}], T0)


def _twin(store: SnapshotStore) -> SnapshotStore:
    if isinstance(store, SqlSnapshotStore):
        return SqlSnapshotStore(store._sessions)
    assert isinstance(store, MongoSnapshotStore)
    return MongoSnapshotStore(store._client, store._resources.database.name)


async def test_factory_picks_the_adapter_from_settings() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    sessions = session_factory(engine)
    assert isinstance(create_snapshot_store(MongoSettings(url=None), sessions), SqlSnapshotStore)
    mongo = create_snapshot_store(MongoSettings(url="mongodb://127.0.0.1:1/"), sessions)
    assert isinstance(mongo, MongoSnapshotStore)
    await mongo.close()
    await engine.dispose()
