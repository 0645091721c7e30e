"""Operation kinds: the names written on operation rows, and the shape of their handlers.

Each domain's `tasks.py` lists its kinds in a `KINDS` mapping (kind -> `KindSpec`);
`openvle_core.handlers` joins those lists into the one registry the runner uses. Nothing
registers itself on import: what handles a kind is read from the lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openvle_core.db.models import Operation
    from openvle_core.runtime import Runtime


class OperationKind(StrEnum):
    """Every kind of operation (the `kind` column; clients filter by these strings)."""

    VM_CLONE = "vm.clone"
    VM_POWER = "vm.power"
    VM_MIGRATE = "vm.migrate"
    VM_DELETE = "vm.delete"
    TEMPLATE_CREATE = "template.create"
    TEMPLATE_UPDATE = "template.update"
    TEMPLATE_DELETE = "template.delete"
    EVENT_DEPLOY = "event.deploy"
    EVENT_ARCHIVE = "event.archive"
    EVENT_VM_DEPLOY = "event.vm_deploy"
    EVENT_VM_ARCHIVE = "event.vm_archive"
    SYNC = "sync"


Handler = Callable[["Runtime", "Operation"], Awaitable[None]]
FailureHook = Callable[["Runtime", "Operation", BaseException], Awaitable[None]]


@dataclass(frozen=True)
class KindSpec:
    """A kind's handler and what to do to its target after a permanent failure."""

    handler: Handler
    on_failure: FailureHook | None = None


Kinds = Mapping[str, KindSpec]  # keys: OperationKind members (tests add kinds of their own)


def join_kinds(*lists: Kinds) -> dict[str, KindSpec]:
    """One registry from the domains' lists; a kind listed twice is a bug."""
    joined: dict[str, KindSpec] = {}
    for kinds in lists:
        twice = joined.keys() & kinds.keys()
        if twice:
            raise RuntimeError(f"operation kinds listed twice: {sorted(twice)}")
        joined.update(kinds)
    return joined
