"""API tokens: who the caller is."""

from __future__ import annotations

from pydantic import BaseModel, Field

from openvle_core.db.enums import TokenScope


class CurrentToken(BaseModel):
    """The token of this request: its id, name and scope (never the secret)."""

    id: str = Field(examples=["0193a5a0-7c1e-7d2a-8f00-1a2b3c4d5e6f"])
    name: str = Field(examples=["demo-admin"])
    scope: TokenScope
