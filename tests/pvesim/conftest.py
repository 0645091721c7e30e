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
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from openvle_pvesim import Simulator, run_simulator
from tests.pvesim.kit import ADMIN_TOKEN, CI_TOKEN, MakeSim, pve


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
