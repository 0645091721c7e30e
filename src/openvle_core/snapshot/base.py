"""The diffing half shared by both adapters: write only what changed since last sync.

Each adapter remembers what it last wrote together with a random token that it also
stores. If the stored token is still ours, nobody else wrote in between and the memory
is the truth, so a sync with 1% changes writes 1% of the rows. Otherwise it reloads.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openvle_core.snapshot.errors import InvalidResource
from openvle_core.snapshot.port import ReplaceResult, Resource


@dataclass(frozen=True)
class WritePlan:
    """What to change in the store: new or modified resources and removed ids."""

    new: list[Mapping[str, Any]]
    modified: list[Mapping[str, Any]]
    removed: list[str]
    unchanged: int


def plan_replace(
    previous: Mapping[str, Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> WritePlan:
    """Compare the stored snapshot with the new one."""
    new: list[Mapping[str, Any]] = []
    modified: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for item in current:
        rid = item.get("id")
        if not isinstance(rid, str) or not rid:
            raise InvalidResource(f"resource without an id: {dict(item)!r:.200}")
        seen.add(rid)
        old = previous.get(rid)
        if old is None:
            new.append(item)
        elif old is not item and old != item:  # the sync hands unchanged guests' documents back
            modified.append(item)
    removed = [rid for rid in previous if rid not in seen]
    return WritePlan(new, modified, removed, len(seen) - len(new) - len(modified))


class DiffingSnapshotStore(abc.ABC):
    """`replace_all` on top of three storage primitives each adapter provides."""

    def __init__(self) -> None:
        self._memory: tuple[str, Mapping[str, Mapping[str, Any]]] | None = None

    async def replace_all(
        self, resources: Sequence[Mapping[str, Any]], synced_at: datetime
    ) -> ReplaceResult:
        """Store exactly `resources`; write only the difference from the stored state.

        The store keeps the mappings given (no copies: 10,000 guests' documents are
        several MB), so the caller must not change them afterwards."""
        previous = await self._previous()
        plan = plan_replace(previous, resources)
        token = str(uuid.uuid4())
        await self._write(plan, synced_at, token)
        self._memory = (token, {str(r["id"]): r for r in resources})
        return ReplaceResult(len(plan.new) + len(plan.modified), len(plan.removed), plan.unchanged)

    async def _previous(self) -> Mapping[str, Mapping[str, Any]]:
        stored_token = await self._stored_token()
        if self._memory is not None and self._memory[0] == stored_token:
            return self._memory[1]
        return await self._load_all()

    @abc.abstractmethod
    async def _stored_token(self) -> str | None:
        """The token of the last write, None if never written."""

    @abc.abstractmethod
    async def _load_all(self) -> dict[str, Resource]:
        """Every stored resource by id."""

    @abc.abstractmethod
    async def _write(self, plan: WritePlan, synced_at: datetime, token: str) -> None:
        """Apply `plan` and record `synced_at` and `token`, in as few round-trips as possible."""
