"""VMs: what is listed, and the bodies of clone and migrate."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from openvle_api.schemas.common import UUID_EXAMPLE, Body, Schema
from openvle_core.db.enums import (
    GuestIdentity,
    VmStatus,
)


class VmOut(Schema):
    """A VM OpenVLE made: its UUID is its identity, vmid its Proxmox handle."""

    id: str = Field(examples=[UUID_EXAMPLE])
    vmid: int | None = Field(examples=[1042])
    name: str = Field(examples=["sec101-07-debian"])
    node: str | None = Field(examples=["pve2"])
    template_id: str | None = Field(examples=[UUID_EXAMPLE])
    event_id: str | None = Field(examples=[None])
    participant: int | None = Field(
        description="The participant number within its event.", examples=[7]
    )
    status: VmStatus
    ipv4: str | None = Field(examples=["10.20.0.17"])
    ipv4_duplicate: bool = Field(
        description="Another running VM reports the same IPv4 (set by the sync; check DHCP).",
        examples=[False],
    )
    full_clone: bool
    ha_managed: bool
    identity: GuestIdentity = Field(
        description=(
            "Whether the guest at `vmid` is provably this VM: `ours` (its evidence, "
            "recorded at clone time, matched when last checked), `foreign` (the vmid now "
            "holds another guest: this VM is gone, status `missing`; that guest is listed "
            "by GET /vms/unmanaged and never touched), `unconfirmed` (no evidence yet: "
            "being cloned), `legacy` (made before evidence was recorded)."
        ),
        examples=["ours"],
    )
    created_at: datetime
    updated_at: datetime


class UnmanagedGuestOut(Schema):
    """A VM in our pool that is not ours, as the last sync saw it: listed, never touched."""

    vmid: int = Field(examples=[1042])
    name: str | None = Field(examples=["teacher-golden-image"])
    node: str | None = Field(examples=["pve2"])
    status: str | None = Field(examples=["running"])
    vm_id: str | None = Field(
        description="Our VM whose vmid it took (that VM is gone: identity `foreign`).",
        examples=[UUID_EXAMPLE],
    )


class VmCreate(Body):
    """Clone a VM from a template."""

    model_config = ConfigDict(
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


class VmMigrate(Body):
    """Move a VM to another node."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"target_node": "pve2", "online": True}]},
    )

    target_node: str = Field(min_length=1, max_length=64, examples=["pve2"])
    online: bool = Field(default=False, description="Live migration of a running VM.")
