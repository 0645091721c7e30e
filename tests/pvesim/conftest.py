"""Fixtures for simulator tests, parametrised over both PVE versions.

- `pve_version`: "9.1" and "8.4".
- `make_sim(**options)`: an async context-manager factory around `run_simulator` with
  `check_responses=True`, no TLS and instant tasks by default; on exit it asserts that no
  response strayed from the official schema.
- `sim`: a demo-seed simulator of `pve_version`.
- `pve(sim, token=...)`: an httpx.AsyncClient with that token (default `openvle@pve!ci`);
  `ci` and `admin` are ready-made clients for the two demo tokens.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from openvle_pvesim import Simulator, run_simulator

CI_TOKEN = "openvle@pve!ci"
ADMIN_TOKEN = "root@pam!admin"
MakeSim = Callable[..., contextlib.AbstractAsyncContextManager[Simulator]]


@pytest.fixture(params=["9.1", "8.4"])
def pve_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_sim(pve_version: str) -> MakeSim:
    """Factory: `async with make_sim(vms=10) as sim:`; checks responses on exit."""

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[Simulator]:
        options = {"version": pve_version, "tls": False, "check_responses": True, **options}
        async with run_simulator(**options) as simulator:
            yield simulator
            assert simulator.violations == [], "responses violated the schema"

    return factory


@pytest.fixture
async def sim(make_sim: MakeSim) -> AsyncIterator[Simulator]:
    async with make_sim() as simulator:
        yield simulator


def auth_header(sim: Simulator, token: str) -> dict[str, str]:
    return {"Authorization": f"PVEAPIToken={token}={sim.tokens[token]}"}


def pve(sim: Simulator, token: str | None = CI_TOKEN, **options: Any) -> httpx.AsyncClient:
    """A client for `sim` authenticated as `token` (None: no credentials)."""
    headers = {**(auth_header(sim, token) if token else {}), **options.pop("headers", {})}
    verify: Any = ssl.create_default_context(cafile=sim.ca_file) if sim.ca_file else True
    return httpx.AsyncClient(
        base_url=sim.url, headers=headers, verify=verify, timeout=10.0, **options
    )


@pytest.fixture
async def ci(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with pve(sim, CI_TOKEN) as client:
        yield client


@pytest.fixture
async def admin(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with pve(sim, ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
def connect() -> Callable[..., httpx.AsyncClient]:
    """`connect(sim, token=CI_TOKEN)` -> an httpx.AsyncClient (use `async with`)."""
    return pve
