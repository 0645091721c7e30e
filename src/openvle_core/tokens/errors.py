"""API token errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import NotFoundError


class TokenNotFound(NotFoundError):
    """No API token with that id."""

    code = "token_not_found"
