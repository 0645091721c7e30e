"""API token errors (no HTTP; the API maps them)."""

from __future__ import annotations

from openvle_core.errors import NotFoundError, OpenVLEError


class TokenNotFound(NotFoundError):
    """No API token with that id."""

    code = "token_not_found"


class InvalidTokenRequest(OpenVLEError):
    """A token cannot be created as asked (empty or too long a name, expiry in the past)."""

    code = "invalid_token_request"
