"""The worker tests' simulator (a module may define its own `sim` instead)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openvle_pvesim import Simulator, run_simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """PVE 9.1 at time scale 0.01; its task gate is opened at the end, should a test
    have left a task hanging on it."""
    async with run_simulator(version="9.1", time_scale=0.01) as simulator:
        try:
            yield simulator
        finally:
            simulator.cluster.tasks.gate.set()
