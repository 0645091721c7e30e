"""The registry of operation kinds: `"vm.clone"` -> `async def handler(runtime, op)`.

Engine modules register their handlers with `@operation_kind("vm.clone")` when imported;
`load_kinds()` imports them all (and the reconciler's "sync" kind) once.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openvle_core.db.models import Operation
    from openvle_core.runtime import Runtime

Handler = Callable[["Runtime", "Operation"], Awaitable[None]]
FailureHook = Callable[["Runtime", "Operation", BaseException], Awaitable[None]]
KIND_MODULES = ("openvle_core.engine.kinds", "openvle_core.events.kinds")
OPTIONAL_KIND_MODULES = ("openvle_core.reconcile",)


@dataclass(frozen=True)
class KindSpec:
    """A kind's handler and what to do to its target after a permanent failure."""

    handler: Handler
    on_failure: FailureHook | None = None


_KINDS: dict[str, KindSpec] = {}


def operation_kind(
    kind: str, *, on_failure: FailureHook | None = None
) -> Callable[[Handler], Handler]:
    """Register `handler` for `kind` (a second registration of one kind is a bug)."""

    def register(handler: Handler) -> Handler:
        if kind in _KINDS and _KINDS[kind].handler is not handler:
            raise RuntimeError(f"operation kind {kind!r} registered twice")
        _KINDS[kind] = KindSpec(handler, on_failure)
        return handler

    return register


def load_kinds() -> None:
    """Import every module that registers kinds (idempotent)."""
    for name in KIND_MODULES:
        importlib.import_module(name)
    for name in OPTIONAL_KIND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def kind_spec(kind: str) -> KindSpec | None:
    """The registered spec of `kind`, or None."""
    load_kinds()
    return _KINDS.get(kind)
