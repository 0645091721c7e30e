"""IP address management errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import ConflictError


class NetworkExhausted(ConflictError):
    """No free address is left in the VM network."""

    code = "ip_network_exhausted"
