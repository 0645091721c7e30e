"""PVE's synchronous errors, raised by every layer of the simulator (imports nothing).

`PVEError` is what a `die` or `raise_param_exc` in a PVE handler becomes on the wire;
`param_error` is PVE::Exception's `raise_param_exc` (400 with per-parameter texts).
"""

from __future__ import annotations


class PVEError(Exception):
    """A synchronous PVE error: HTTP status, the message (reason phrase), optional `errors`.

    The formatter ends `message` with a newline as PVE does and uses its first line as
    the HTTP reason phrase. 401 errors are sent with an empty body after the auth delay.
    """

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def param_error(**errors: str) -> PVEError:
    """400 `Parameter verification failed.` with per-parameter messages."""
    return PVEError(400, "Parameter verification failed.", errors)
