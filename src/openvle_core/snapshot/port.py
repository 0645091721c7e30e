"""The `SnapshotStore` port: the last /cluster/resources answer, for fast reads.

A resource is one entry of /cluster/resources as a JSON-like dict; its `id` (such as
`qemu/100` or `node/pve1`) is the key. `replace_all` makes the store hold exactly the
given resources (vanished ones removed) with one bulk write, not one write per VM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Resource = dict[str, Any]


@dataclass(frozen=True)
class ReplaceResult:
    """What a `replace_all` changed: added or modified, removed, left as they were."""

    written: int
    removed: int
    unchanged: int


class SnapshotStore(Protocol):
    """Where the cluster-resource snapshot lives (MongoDB, or the SQL database)."""

    async def replace_all(
        self, resources: Sequence[Mapping[str, Any]], synced_at: datetime
    ) -> ReplaceResult:
        """Store exactly `resources` (keyed by `id`) and the time of the sync."""
        ...

    async def get(self, resource_id: str) -> Resource | None:
        """One resource by its PVE id, or None."""
        ...

    async def list(
        self, *, type: str | None = None, node: str | None = None, pool: str | None = None
    ) -> list[Resource]:
        """Resources matching every given filter, ordered by id."""
        ...

    async def synced_at(self) -> datetime | None:
        """When the stored snapshot was taken (aware UTC), None before the first sync."""
        ...

    async def ping(self) -> None:
        """Raise if the store is unreachable (readiness checks)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
