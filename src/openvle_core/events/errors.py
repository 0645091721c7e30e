"""Event domain errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import ConflictError, NotFoundError


class EventNotFound(NotFoundError):
    """No event with that id."""

    code = "event_not_found"


class SlugTaken(ConflictError):
    """Another event already uses that slug."""

    code = "slug_taken"
