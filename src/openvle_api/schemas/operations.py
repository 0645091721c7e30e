"""Operations: state, progress and error of work in flight or done."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from openvle_api.schemas.common import UUID_EXAMPLE
from openvle_core.db.enums import (
    OperationState,
)
from openvle_core.db.models import Operation
from openvle_core.events.progress import VmProgress


class Progress(BaseModel):
    """How far an operation got: `done` of `total` steps (total 0 = unknown)."""

    done: int = Field(examples=[3])
    total: int = Field(examples=[10])


class OperationError(BaseModel):
    """Why an operation failed."""

    type: str = Field(examples=["ProxmoxTaskFailed"])
    message: str = Field(examples=["task UPID:pve1:... failed: can't lock file"])


class OperationOut(BaseModel):
    """A unit of work and its progress; poll it or stream /operations/{id}/events."""

    id: str = Field(examples=[UUID_EXAMPLE])
    kind: str = Field(examples=["vm.clone"])
    state: OperationState
    target_type: str = Field(examples=["vm"])
    target_id: str | None = Field(examples=[UUID_EXAMPLE])
    parent_id: str | None = Field(examples=[None])
    progress: Progress
    attempts: int = Field(examples=[1])
    error: OperationError | None = Field(examples=[None])
    result: dict[str, Any] | None = Field(examples=[None])
    warnings: list[str] = Field(
        default_factory=list,
        description="What the request changed on the way, e.g. a name made DNS-safe.",
        examples=[["name 'Lab 1' became 'lab-1': VM names are DNS names (...)"]],
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


def operation_out(op: Operation) -> OperationOut:
    """The API view of an `Operation` row."""
    error = None
    if op.state == OperationState.FAILED.value or op.error_message:
        error = OperationError(type=op.error_type or "Error", message=op.error_message or "")
    return OperationOut(
        id=op.id,
        kind=op.kind,
        state=op.state,
        target_type=op.target_type,
        target_id=op.target_id,
        parent_id=op.parent_id,
        progress=Progress(done=op.progress_done, total=op.progress_total),
        attempts=op.attempts,
        error=error,
        result=op.result,
        warnings=[str(w) for w in (op.params or {}).get("warnings", [])],
        created_at=op.created_at,
        started_at=op.started_at,
        finished_at=op.finished_at,
        updated_at=op.updated_at,
    )


class BatchVmOut(BaseModel):
    """One VM of an event deploy or archive, and where it stands.

    `phase` is queued, cloning, configuring, starting or running on the way up, failed
    (with `error`, the reason of the VM's own operation), or the VM's status otherwise.
    """

    id: str = Field(examples=[UUID_EXAMPLE])
    name: str = Field(examples=["sec101-007-debian"])
    participant: int | None = Field(examples=[7])
    template_id: str | None = Field(examples=[UUID_EXAMPLE])
    node: str | None = Field(examples=["pve2"])
    vmid: int | None = Field(examples=[1042])
    status: str = Field(examples=["running"])
    ipv4: str | None = Field(examples=["10.20.0.17"])
    phase: str = Field(examples=["running"])
    operation_id: str | None = Field(description="The VM's child operation, if it has one.")
    operation_state: OperationState | None
    error: str | None = Field(examples=[None])
    updated_at: datetime


def batch_vm_out(vm: VmProgress) -> BatchVmOut:
    """The API view of a `VmProgress`."""
    return BatchVmOut.model_validate(vm, from_attributes=True)
