"""The root of OpenVLE's domain errors.

Domain errors carry no HTTP: the API maps each class to a problem+json response in one
table (openvle_api/errors.py). Subclass `OpenVLEError` per domain, in that domain's
`errors.py`; `code` is a stable machine-readable name, the message is shown to users as is.
"""

from __future__ import annotations


class OpenVLEError(Exception):
    """Base class of every error the service raises on purpose."""

    code: str = "openvle_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(OpenVLEError):
    """An entity that does not exist (or is outside our pool, which looks the same)."""

    code = "not_found"


class ConflictError(OpenVLEError):
    """The request clashes with the current state (busy VM, slug taken, ...)."""

    code = "conflict"


class TransientStep(OpenVLEError):
    """Raised by operation steps to ask for a retry with backoff (the reason is the message)."""

    code = "transient_step"


class InvalidRequest(OpenVLEError):
    """The request itself is invalid (unknown action, bad name, unknown node, ...)."""

    code = "invalid_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the body field at fault, when there is one
