"""The seam between the simulator's HTTP layer and its Proxmox model.

The HTTP layer (`server.py`, `schema.py`, `access.py`, `faults.py`) parses a request,
authenticates the token, validates and coerces parameters against the official schema of
the simulated version, evaluates the schema's `permissions.check`, applies HTTP-level
fault injection, then calls the handler registered for (method, path template) with a
`Request`. The model (`model.py`, `cluster.py`, `handlers/`, `tasks.py`, `seeds.py`)
implements the handlers and raises `errors.PVEError` for every failure real PVE reports
synchronously.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openvle_pvesim.access import Principal
    from openvle_pvesim.cluster import Cluster


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
