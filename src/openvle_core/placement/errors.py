"""Placement errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class NoPlacement(OpenVLEError):
    """No online node could take the clone."""

    code = "no_placement"
