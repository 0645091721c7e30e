"""Snapshot store errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class InvalidResource(OpenVLEError):
    """A resource without a string `id` (every /cluster/resources entry has one)."""

    code = "invalid_resource"
