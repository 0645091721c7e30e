"""Fixtures: the simulator over a real socket and a client on it (CI token, fast retries)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from openvle_pvesim import Simulator, run_simulator
from tests.proxmox.simclient import Harness, open_harness, settings_for


@pytest.fixture(params=["9.1", "8.4"])
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    """A demo-seed simulator over HTTPS with instant tasks, per PVE version.

    Every response is checked against the official schema of that version.
    """
    async with run_simulator(
        version=request.param, time_scale=0.0, check_responses=True
    ) as simulator:
        yield simulator
        assert simulator.violations == []


@pytest.fixture
async def h(sim: Simulator) -> AsyncIterator[Harness]:
    """The CI token's client on `sim`, TLS verified against the simulator's CA."""
    stack: list[httpx.AsyncClient] = []
    harness = await open_harness(sim, settings_for(sim), stack)
    try:
        yield harness
    finally:
        for http in stack:
            await http.aclose()
