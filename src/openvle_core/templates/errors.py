"""Template domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import ConflictError, NotFoundError


class TemplateNotFound(NotFoundError):
    """No template with that id (or it is outside our pool)."""

    code = "template_not_found"


class TemplateInUse(ConflictError):
    """The template still has VMs (linked clones) and cannot be deleted."""

    code = "template_in_use"


class SourceNotInPool(NotFoundError):
    """The VM to convert is not a member of our pool as of the last sync (404, as if absent)."""

    code = "vm_not_found"
