"""Events: the bodies of create and change (with the field rules), and what is listed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from openvle_api.schemas.common import UUID_EXAMPLE, Body, DateTime
from openvle_core.db.enums import (
    EventStatus,
)
from openvle_core.events.plan import EventPlan
from openvle_core.events.queries import EventView

SLUG_PATTERN = r"^[a-z0-9_-]{4,8}$"


START_EXAMPLE = "2030-03-01T09:00:00Z"
END_EXAMPLE = "2030-03-01T17:00:00Z"
TEXT_RULE = "No control or bidirectional formatting characters"


class EventIn(Body):
    """A new event: participants x templates VMs between two times.

    `ends_at` must be after `starts_at` and not yet past (422). An event already running
    (`starts_at` minus WORKER_EVENT_LEAD_TIME has come) is deployed at once: the answer
    says `deploying` and carries `deploy_operation_id`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "slug": "sec101",
                    "name": "Security 101, spring",
                    "starts_at": START_EXAMPLE,
                    "ends_at": END_EXAMPLE,
                    "template_ids": [UUID_EXAMPLE],
                    "participants": 24,
                }
            ]
        },
    )

    slug: str = Field(pattern=SLUG_PATTERN, examples=["sec101"])
    name: str = Field(
        min_length=1,
        max_length=128,
        description=f"{TEXT_RULE}.",
        examples=["Security 101, spring"],
    )
    description: str = Field(
        default="",
        max_length=10_000,
        description=f"{TEXT_RULE} (line breaks and tabs are fine).",
    )
    starts_at: DateTime = Field(
        description=(
            "With a timezone. The event is deployed once this time, less "
            "WORKER_EVENT_LEAD_TIME, has come: at once if it already has."
        ),
        examples=[START_EXAMPLE],
    )
    ends_at: DateTime = Field(
        description="With a timezone; after starts_at and not yet past.",
        examples=[END_EXAMPLE],
    )
    template_ids: list[str] = Field(min_length=1, max_length=20, examples=[[UUID_EXAMPLE]])
    participants: int = Field(ge=1, le=1000, examples=[24])


class EventPatch(Body):
    """Fields to change (absent or null = unchanged); `template_ids` replaces the list."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"participants": 30}, {"ends_at": "2030-03-01T18:00:00Z"}]},
    )

    slug: str | None = Field(default=None, pattern=SLUG_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=10_000)
    starts_at: DateTime | None = None
    ends_at: DateTime | None = None
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
    status_reason: str | None = Field(
        default=None,
        description="Why the event waits in its status: a scheduled deploy that did not fit.",
    )
    vm_counts: dict[str, int] = Field(
        default_factory=dict,
        description="The event's VMs per status (statuses without VMs are left out).",
        examples=[{"running": 22, "cloning": 2}],
    )
    created_at: datetime
    updated_at: datetime


class EventCreated(EventOut):
    """A new event; `deploy_operation_id` is set when it was already running and its
    deploy was queued with it (follow /api/v1/operations/{id})."""

    deploy_operation_id: str | None = Field(default=None, examples=[None])


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
        status_reason=e.status_reason,
        vm_counts=view.vm_counts,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


class NodePlanOut(BaseModel):
    """One node before and after the event's VMs (free memory in MiB, free CPU in cores)."""

    name: str = Field(examples=["pve1"])
    online: bool
    new_vms: int
    memory_free_mb_before: int
    memory_free_mb_after: int
    cpu_free_before: float
    cpu_free_after: float


class StoragePlanOut(BaseModel):
    """Room a storage needs for the event's full clones (`node` null: a shared storage)."""

    storage: str = Field(examples=["local-lvm"])
    node: str | None
    needed_mb: int
    free_mb: int


class AddressPlanOut(BaseModel):
    """Static addresses (cloud-init) the event needs, and how many are free."""

    needed: int
    free: int


class EventPlanOut(BaseModel):
    """Will the event fit? Its deploy, dry-run against the last sync's figures."""

    fits: bool = Field(description="Nothing stands in the way: `problems` is empty.")
    problems: list[str] = Field(description="What does not fit, a sentence each.")
    notes: list[str] = Field(description="What the plan could not check, and why.")
    vms: int = Field(description="VMs the deploy would clone now.")
    estimated_duration_s: float
    duration_basis: str = Field(description="What the estimate is based on.")
    nodes: list[NodePlanOut]
    storages: list[StoragePlanOut]
    addresses: AddressPlanOut | None = Field(description="With cloud-init; null without.")


def plan_out(plan: EventPlan) -> EventPlanOut:
    """The API view of an `EventPlan`."""
    addresses = plan.addresses
    return EventPlanOut(
        fits=plan.fits,
        problems=plan.problems,
        notes=plan.notes,
        vms=plan.vms,
        estimated_duration_s=plan.estimated_duration_s,
        duration_basis=plan.duration_basis,
        nodes=[NodePlanOut(**vars(n)) for n in plan.nodes],
        storages=[StoragePlanOut(**vars(s)) for s in plan.storages],
        addresses=None if addresses is None else AddressPlanOut(**vars(addresses)),
    )
