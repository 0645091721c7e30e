"""VM domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import ConflictError, NotFoundError


class VmNotFound(NotFoundError):
    """No VM with that id (or it is outside our pool)."""

    code = "vm_not_found"


class InvalidPowerState(ConflictError):
    """The VM's real state does not allow the action (reboot a stopped VM, ...)."""

    code = "invalid_power_state"
