"""Templates: what is listed, and the bodies of create and change."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from openvle_api.schemas.common import UUID_EXAMPLE, Body, Schema
from openvle_core.db.enums import (
    TemplateStatus,
)


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


class TemplateCreate(Body):
    """Either convert pool VM `source_vmid`, or derive from `from_template_id` (+ name)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"source_vmid": 9000}, {"from_template_id": UUID_EXAMPLE, "name": "x"}]
        },
    )

    source_vmid: int | None = Field(default=None, ge=100, le=999_999_999)
    from_template_id: str | None = Field(default=None, max_length=36)
    name: str | None = Field(default=None, max_length=63)


class TemplatePatch(Body):
    """Template fields to change (absent or null = unchanged)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cores": 4, "memory_mb": 8192}, {"name": "debian-13"}]},
    )

    name: str | None = Field(default=None, min_length=1, max_length=63)
    cores: int | None = Field(default=None, ge=1, le=512)
    memory_mb: int | None = Field(default=None, ge=16, le=4_194_304)
    description: str | None = Field(default=None, max_length=8192)
