"""SnapshotStore on MongoDB (pymongo's AsyncMongoClient): one document per resource.

`_id` is the PVE id (`qemu/100`); the other fields are the resource as Proxmox gave it.
Writes are one `bulk_write` of upserts by `_id` per 1,000 written plus one `delete_many`
per 1,000 vanished ids, so a sync costs a couple of round-trips whatever the cluster size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection

from openvle_core.snapshot.base import DiffingSnapshotStore, WritePlan
from openvle_core.snapshot.port import Resource

META_ID = "snapshot"
DELETE_CHUNK = 1000
WRITE_CHUNK = 1000  # upserts per bulk_write: bounds the memory of a first sync's write
Doc = dict[str, Any]


class MongoSnapshotStore(DiffingSnapshotStore):
    """Collections `resources` (indexed on type, node, pool) and `snapshot_meta`."""

    def __init__(self, client: AsyncMongoClient[Doc], database: str) -> None:
        super().__init__()
        self._client = client
        self._resources: AsyncCollection[Doc] = client[database]["resources"]
        self._meta: AsyncCollection[Doc] = client[database]["snapshot_meta"]
        self._indexed = False

    @classmethod
    def from_url(cls, url: str, database: str) -> MongoSnapshotStore:
        """A store with its own client (closed by `close()`)."""
        client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000
        )
        return cls(client, database)

    async def ensure_indexes(self) -> None:
        """Create the type/node/pool indexes once per process (idempotent on the server)."""
        if not self._indexed:
            for key in ("type", "node", "pool"):
                await self._resources.create_index([(key, ASCENDING)])
            self._indexed = True

    async def get(self, resource_id: str) -> Resource | None:
        """One resource by its PVE id, or None."""
        doc = await self._resources.find_one({"_id": resource_id})
        return None if doc is None else _resource(doc)

    async def list(
        self, *, type: str | None = None, node: str | None = None, pool: str | None = None
    ) -> list[Resource]:
        """Resources matching every given filter, ordered by id."""
        query = {k: v for k, v in (("type", type), ("node", node), ("pool", pool)) if v is not None}
        found = [_resource(doc) async for doc in self._resources.find(query)]
        return sorted(found, key=lambda r: str(r["id"]))

    async def synced_at(self) -> datetime | None:
        """When the stored snapshot was taken."""
        meta = await self._meta.find_one({"_id": META_ID})
        return None if meta is None else _aware(meta["synced_at"])

    async def ping(self) -> None:
        """Raise if the server does not answer."""
        await self._client.admin.command("ping")

    async def close(self) -> None:
        """Close the client."""
        await self._client.close()

    async def _stored_token(self) -> str | None:
        meta = await self._meta.find_one({"_id": META_ID}, {"token": 1})
        return None if meta is None else str(meta["token"])

    async def _load_all(self) -> dict[str, Resource]:
        return {str(doc["_id"]): _resource(doc) async for doc in self._resources.find({})}

    async def _write(self, plan: WritePlan, synced_at: datetime, token: str) -> None:
        await self.ensure_indexes()
        written = [*plan.new, *plan.modified]
        for start in range(0, len(written), WRITE_CHUNK):  # a first sync: not all at once
            chunk = written[start : start + WRITE_CHUNK]
            upserts = [ReplaceOne({"_id": r["id"]}, _doc(r), upsert=True) for r in chunk]
            await self._resources.bulk_write(upserts, ordered=False)
        for ids in _chunks(plan.removed, DELETE_CHUNK):
            await self._resources.delete_many({"_id": {"$in": ids}})
        meta = {"_id": META_ID, "synced_at": synced_at.astimezone(UTC), "token": token}
        await self._meta.replace_one({"_id": META_ID}, meta, upsert=True)


def _doc(resource: Mapping[str, Any]) -> Doc:
    return {**resource, "_id": resource["id"]}


def _resource(doc: Doc) -> Resource:
    return {k: v for k, v in doc.items() if k != "_id"}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
