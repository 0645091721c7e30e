"""Changelog entries: every status, node and IP change with its source."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from openvle_api.schemas.common import UUID_EXAMPLE, Schema
from openvle_core.db.enums import (
    ChangeSource,
)


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
