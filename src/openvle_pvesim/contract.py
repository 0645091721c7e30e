"""The seam between the simulator's HTTP layer and its Proxmox model.

The HTTP layer (`server.py`, `schema.py`, `access.py`, `faults.py`) parses a request,
authenticates the token, validates and coerces parameters against the official schema of
the simulated version, evaluates the schema's `permissions.check`, applies HTTP-level
fault injection, then calls the handler registered for (method, path template) with a
`Request`. The model (`cluster.py`, `handlers.py`, `tasks.py`, `seeds.py`) implements the
handlers and raises `PVEError` for every failure real PVE reports synchronously.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openvle_pvesim.access import Principal
    from openvle_pvesim.cluster import Cluster


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


@dataclass
class Response:
    """A successful result: `data` goes into the envelope, `extra` beside it (`total`)."""

    data: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    """What a handler receives.

    `params` holds path and query/body parameters, validated and coerced per the schema:
    integers are `int`, booleans `bool` (PVE's 0/1), numbers `float`, the rest `str`.
    """

    method: str
    path: str
    template: str
    params: dict[str, Any]
    principal: Principal
    cluster: Cluster


class DomainFaults(Protocol):
    """Faults the model asks about (implemented by `faults.FaultInjector`).

    `take(kind, target)` returns None when no fault fires, else the message to use
    ("" means the model's default message for that fault). Kinds and targets:
    - "task_fail", target = task type ("qmclone", "qmstart", ...): the task ends in error;
    - "lock_timeout", target = task type: the task fails with a `can't lock file` timeout;
    - "nextid_collision", target = "": /cluster/nextid hands out an id another clone takes;
    - "agent_not_running", target = str(vmid): the guest agent does not answer.
    Counts and probabilities are the injector's business; it is deterministic under a seed.
    """

    def take(self, kind: str, target: str) -> str | None: ...


Handler = Callable[[Request], Awaitable[Any]]
"""Returns the `data` of the envelope (or a `Response`), or raises `PVEError`."""

ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register a handler for a schema path template such as `/nodes/{node}/qemu/{vmid}`."""

    def register(handler: Handler) -> Handler:
        key = (method.upper(), template)
        if key in ROUTES:
            raise RuntimeError(f"route registered twice: {method} {template}")
        ROUTES[key] = handler
        return handler

    return register
