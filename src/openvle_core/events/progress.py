"""Where each VM of an event deploy or archive stands: a phase a person can read.

A deploy takes every VM through queued -> cloning -> configuring -> starting -> running
(with its IPv4 once the guest agent reported it); `failed` carries the reason of the VM's
child operation. The phase comes from the VM's status and the child's journal (`cloned`),
so reading it costs no more than the two indexed reads of `queries.batch_vms`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row

from openvle_core.db.enums import OperationState, VmStatus
from openvle_core.events.queries import BatchVms

_IN_FLIGHT = {OperationState.QUEUED.value, OperationState.RUNNING.value}


@dataclass(frozen=True, slots=True)
class VmProgress:
    """One VM of a batch: its row's fields, its phase and its child operation."""

    id: str
    name: str
    participant: int | None
    template_id: str | None
    node: str | None
    vmid: int | None
    status: str
    ipv4: str | None
    phase: str
    operation_id: str | None
    operation_state: str | None
    error: str | None
    updated_at: datetime


def phase_of(status: str, child: Row[Any] | None) -> str:
    """The phase of a VM with this status, given its child operation (None: none yet)."""
    if child is not None and child.state == OperationState.FAILED.value:
        return "failed"
    if status == VmStatus.ERROR.value:
        return "failed"
    if status == VmStatus.CLONING.value:
        if child is None or child.state == OperationState.QUEUED.value:
            return "queued"
        return "configuring" if (child.result or {}).get("cloned") else "cloning"
    if status == VmStatus.STOPPED.value and child is not None and child.state in _IN_FLIGHT:
        return "configuring" if (child.result or {}).get("cloned") else status
    return status


def _error(child: Row[Any] | None) -> str | None:
    if child is None or child.state != OperationState.FAILED.value:
        return None
    return f"{child.error_type or 'Error'}: {child.error_message or ''}".rstrip(": ")


def vm_progress(batch: BatchVms) -> list[VmProgress]:
    """Every VM of the batch with its phase, by name."""
    out: list[VmProgress] = []
    for vm in batch.vms:
        child = batch.children.get(vm.id)
        out.append(
            VmProgress(
                id=vm.id,
                name=vm.name,
                participant=vm.participant,
                template_id=vm.template_id,
                node=vm.node,
                vmid=vm.vmid,
                status=vm.status,
                ipv4=vm.ipv4,
                phase=phase_of(vm.status, child),
                operation_id=None if child is None else child.id,
                operation_state=None if child is None else child.state,
                error=_error(child),
                updated_at=vm.updated_at,
            )
        )
    return out
