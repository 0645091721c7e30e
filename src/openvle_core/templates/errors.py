"""Template domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import ConflictError, NotFoundError


class TemplateNotFound(NotFoundError):
    """No template with that id (or it is outside our pool)."""

    code = "template_not_found"


class TemplateInUse(ConflictError):
    """The template still has VMs (linked clones) and cannot be deleted."""

    code = "template_in_use"
