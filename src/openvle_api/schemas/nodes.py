"""Nodes as the last sync saw them."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from openvle_api.schemas.common import Schema


class NodeOut(Schema):
    """A cluster node as the last sync saw it."""

    name: str = Field(examples=["pve1"])
    status: str = Field(examples=["online"])
    cpu: float = Field(description="CPU load, 0-1.", examples=[0.12])
    maxcpu: int = Field(examples=[32])
    mem: int = Field(description="Memory used, bytes.", examples=[34359738368])
    maxmem: int = Field(examples=[137438953472])
    updated_at: datetime
