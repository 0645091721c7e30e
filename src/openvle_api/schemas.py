"""Request and response bodies of the REST API v1 (pydantic), with examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from openvle_core.db.enums import (
    ChangeSource,
    EventStatus,
    OperationState,
    TemplateStatus,
    VmStatus,
)
from openvle_core.db.models import Operation
from openvle_core.events.queries import EventView

T = TypeVar("T")

UUID_EXAMPLE = "0193a5a0-7c1e-7d2a-8f00-1a2b3c4d5e6f"
TIME_EXAMPLE = "2026-03-01T09:00:00Z"


class Schema(BaseModel):
    """Base of response bodies: built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class ProblemItem(BaseModel):
    """One invalid field: where it is and what is wrong with it."""

    loc: list[str | int] = Field(examples=[["body", "slug"]])
    msg: str = Field(examples=["String should match pattern '^[a-z0-9_-]{4,8}$'"])


class Problem(BaseModel):
    """An RFC 9457 problem; `detail` is meant to be shown to people as is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:openvle:problem:vm_not_found",
                    "title": "Not found",
                    "status": 404,
                    "detail": f"VM {UUID_EXAMPLE} not found",
                    "instance": f"/api/v1/vms/{UUID_EXAMPLE}",
                }
            ]
        }
    )

    type: str = Field(description="A URN naming the kind of problem (stable, machine-readable).")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, for people.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[ProblemItem] | None = Field(
        default=None, description="Validation problems, one per field (422 only)."
    )
    operation_id: str | None = Field(
        default=None, description="The operation holding a busy target (409 only)."
    )


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next (null at the end)."""

    items: list[T]
    next_cursor: str | None = Field(examples=[None])


class NodeOut(Schema):
    """A cluster node as the last sync saw it."""

    name: str = Field(examples=["pve1"])
    status: str = Field(examples=["online"])
    cpu: float = Field(description="CPU load, 0-1.", examples=[0.12])
    maxcpu: int = Field(examples=[32])
    mem: int = Field(description="Memory used, bytes.", examples=[34359738368])
    maxmem: int = Field(examples=[137438953472])
    updated_at: datetime


class TemplateOut(Schema):
    """A VM template in our pool."""

    id: str = Field(examples=[UUID_EXAMPLE])
    vmid: int = Field(examples=[9000])
    name: str = Field(examples=["debian-12"])
    node: str | None = Field(examples=["pve1"])
    cores: int | None = Field(examples=[2])
    memory_mb: int | None = Field(examples=[2048])
    description: str | None = Field(examples=["Debian 12 with the lab tools"])
    status: TemplateStatus
    created_at: datetime
    updated_at: datetime


class VmOut(Schema):
    """A VM OpenVLE made: its UUID is its identity, vmid its Proxmox handle."""

    id: str = Field(examples=[UUID_EXAMPLE])
    vmid: int | None = Field(examples=[1042])
    name: str = Field(examples=["sec101-07-debian"])
    node: str | None = Field(examples=["pve2"])
    template_id: str | None = Field(examples=[UUID_EXAMPLE])
    event_id: str | None = Field(examples=[None])
    status: VmStatus
    ipv4: str | None = Field(examples=["10.20.0.17"])
    full_clone: bool
    ha_managed: bool
    created_at: datetime
    updated_at: datetime


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
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class ChangeOut(Schema):
    """One changed field of one entity, with who changed it and when."""

    id: int = Field(examples=[4711])
    entity: str = Field(examples=["vm"])
    entity_id: str = Field(examples=[UUID_EXAMPLE])
    field: str = Field(examples=["status"])
    old: str | None = Field(examples=["running"])
    new: str | None = Field(examples=["stopped"])
    source: ChangeSource
    time: datetime


SLUG_PATTERN = r"^[a-z0-9_-]{4,8}$"


class EventIn(BaseModel):
    """A new event: participants x templates VMs between two times."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "slug": "sec101",
                    "name": "Security 101, spring",
                    "starts_at": TIME_EXAMPLE,
                    "ends_at": "2026-03-01T17:00:00Z",
                    "template_ids": [UUID_EXAMPLE],
                    "participants": 24,
                }
            ]
        },
    )

    slug: str = Field(pattern=SLUG_PATTERN, examples=["sec101"])
    name: str = Field(min_length=1, max_length=128, examples=["Security 101, spring"])
    description: str = Field(default="", max_length=10_000)
    starts_at: datetime = Field(examples=[TIME_EXAMPLE])
    ends_at: datetime = Field(examples=["2026-03-01T17:00:00Z"])
    template_ids: list[str] = Field(min_length=1, max_length=20, examples=[[UUID_EXAMPLE]])
    participants: int = Field(ge=1, le=1000, examples=[24])


class EventPatch(BaseModel):
    """Fields to change (absent or null = unchanged); `template_ids` replaces the list."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"participants": 30}, {"ends_at": "2026-03-01T18:00:00Z"}]},
    )

    slug: str | None = Field(default=None, pattern=SLUG_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=10_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    template_ids: list[str] | None = Field(default=None, min_length=1, max_length=20)
    participants: int | None = Field(default=None, ge=1, le=1000)


class EventOut(BaseModel):
    """An event and the templates it deploys."""

    id: str = Field(examples=[UUID_EXAMPLE])
    slug: str = Field(examples=["sec101"])
    name: str
    description: str
    starts_at: datetime
    ends_at: datetime
    participants: int
    template_ids: list[str]
    status: EventStatus
    created_at: datetime
    updated_at: datetime


class MissingPrivilegeOut(BaseModel):
    """Any one of `privileges` is needed on `path`."""

    path: str = Field(examples=["/pool/OpenVLE-VMs"])
    privileges: list[str] = Field(examples=[["VM.Migrate"]])


class ProxmoxStatus(BaseModel):
    """The cluster as this service sees it."""

    reachable: bool
    version: str | None = Field(examples=["9.1.1"])
    release: str | None = Field(examples=["9.1"])
    pool: str = Field(examples=["OpenVLE-VMs"])
    missing_privileges: dict[str, list[MissingPrivilegeOut]] | None = Field(
        description="Per feature, what the token lacks (null when unreachable)."
    )
    error: str | None = Field(default=None, description="Why it is unreachable.")
    checks: list[DoctorCheckOut] = Field(
        default_factory=list,
        description="The Proxmox checks of `openvle doctor`, each failure with its fix.",
    )


class DoctorCheckOut(BaseModel):
    """One `openvle doctor` check: how it went and the commands that fix a failure."""

    name: str = Field(examples=["privileges: guest_agent"])
    status: str = Field(description="OK, WARN, FAIL or SKIP.", examples=["FAIL"])
    detail: str = Field(examples=["missing VM.GuestAgent.Audit on /pool/OpenVLE-VMs"])
    fix: list[str] = Field(
        examples=[["pveum role modify OpenVLE-VMs --append 1 --privs VM.GuestAgent.Audit"]]
    )


class Check(BaseModel):
    """One readiness check."""

    ok: bool
    detail: str | None = None


class Readiness(BaseModel):
    """Readiness: database, queue and snapshot store; Proxmox is reported, not fatal."""

    ready: bool
    checks: dict[str, Check]
    proxmox: Check


class Liveness(BaseModel):
    """The process is up."""

    status: str = Field(examples=["ok"])


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
        created_at=op.created_at,
        started_at=op.started_at,
        finished_at=op.finished_at,
        updated_at=op.updated_at,
    )


def event_out(view: EventView) -> EventOut:
    """The API view of an `EventView` (row plus template ids)."""
    e = view.event
    return EventOut(
        id=e.id,
        slug=e.slug,
        name=e.name,
        description=e.description,
        starts_at=e.starts_at,
        ends_at=e.ends_at,
        participants=e.participants,
        template_ids=view.template_ids,
        status=e.status,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


class VmCreate(BaseModel):
    """Clone a VM from a template."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"template_id": UUID_EXAMPLE, "name": "sec101-07-debian", "start": True},
                {"template_id": UUID_EXAMPLE, "full_clone": True, "node": "pve2"},
            ]
        },
    )

    template_id: str = Field(max_length=36, examples=[UUID_EXAMPLE])
    name: str | None = Field(default=None, max_length=63, examples=["sec101-07-debian"])
    full_clone: bool | None = Field(
        default=None, description="Default: PVE_VMS_FULL_CLONE_DEFAULT."
    )
    node: str | None = Field(
        default=None, max_length=64, description="Target node; default: placement."
    )
    start: bool = Field(default=False, description="Start the VM once cloned.")


class VmMigrate(BaseModel):
    """Move a VM to another node."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"target_node": "pve2", "online": True}]},
    )

    target_node: str = Field(min_length=1, max_length=64, examples=["pve2"])
    online: bool = Field(default=False, description="Live migration of a running VM.")


class TemplateCreate(BaseModel):
    """Either convert pool VM `source_vmid`, or derive from `from_template_id` (+ name)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"source_vmid": 9000}, {"from_template_id": UUID_EXAMPLE, "name": "x"}]
        },
    )

    source_vmid: int | None = Field(default=None, ge=100, le=999_999_999)
    from_template_id: str | None = Field(default=None, max_length=36)
    name: str | None = Field(default=None, max_length=63)


class TemplatePatch(BaseModel):
    """Template fields to change (absent or null = unchanged)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"cores": 4, "memory_mb": 8192}, {"name": "debian-13"}]},
    )

    name: str | None = Field(default=None, min_length=1, max_length=63)
    cores: int | None = Field(default=None, ge=1, le=512)
    memory_mb: int | None = Field(default=None, ge=16, le=4_194_304)
    description: str | None = Field(default=None, max_length=8192)
