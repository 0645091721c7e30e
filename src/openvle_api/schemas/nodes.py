"""Nodes as the last sync saw them."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from openvle_api.schemas.common import Schema
from openvle_core.db.models import Node


class NodeOut(Schema):
    """A cluster node as the last sync saw it."""

    name: str = Field(examples=["pve1"])
    status: str = Field(examples=["online"])
    cpu: float = Field(description="CPU load, 0-1.", examples=[0.12])
    maxcpu: int = Field(examples=[32])
    mem: int = Field(description="Memory used, bytes.", examples=[34359738368])
    maxmem: int = Field(examples=[137438953472])
    vms: int = Field(default=0, description="OpenVLE's VMs on this node.", examples=[42])
    updated_at: datetime


def node_out(node: Node, vms: int) -> NodeOut:
    """The API view of a node row and its VM count."""
    return NodeOut.model_validate(node).model_copy(update={"vms": vms})
