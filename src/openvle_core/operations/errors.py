"""Operation domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openvle_core.errors import ConflictError, NotFoundError, OpenVLEError

if TYPE_CHECKING:
    pass


class OperationNotFound(NotFoundError):
    """No operation with that id."""

    code = "operation_not_found"


class TargetBusy(ConflictError):
    """Another operation is already in flight on the same target (VM, template, event)."""

    code = "target_busy"

    def __init__(self, message: str, holder_id: str | None = None) -> None:
        super().__init__(message)
        self.holder_id = holder_id


class LeaseLost(OpenVLEError):
    """The runner's lease expired without a renewal (or another runner took the row):
    the work was cancelled so that it stops acting on Proxmox; the row is not ours."""

    code = "lease_lost"
