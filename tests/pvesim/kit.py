"""kit: TODO docstring."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from typing import Any

import httpx

from openvle_pvesim import Simulator

CI_TOKEN = "openvle@pve!ci"


ADMIN_TOKEN = "root@pam!admin"


MakeSim = Callable[..., contextlib.AbstractAsyncContextManager[Simulator]]


def auth_header(sim: Simulator, token: str) -> dict[str, str]:
    return {"Authorization": f"PVEAPIToken={token}={sim.tokens[token]}"}


def pve(sim: Simulator, token: str | None = CI_TOKEN, **options: Any) -> httpx.AsyncClient:
    """A client for `sim` authenticated as `token` (None: no credentials)."""
    headers = {**(auth_header(sim, token) if token else {}), **options.pop("headers", {})}
    verify: Any = ssl.create_default_context(cafile=sim.ca_file) if sim.ca_file else True
    return httpx.AsyncClient(
        base_url=sim.url, headers=headers, verify=verify, timeout=10.0, **options
    )
