"""VM domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import NotFoundError


class VmNotFound(NotFoundError):
    """No VM with that id (or it is outside our pool)."""

    code = "vm_not_found"
