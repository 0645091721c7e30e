"""A Proxmox VE API simulator: a real HTTP(S) server for tests, benchmarks and the demo."""

from openvle_pvesim.harness import (
    Simulator,
    SimulatorThread,
    parse_token,
    run_simulator,
    start_in_thread,
)

__all__ = ["Simulator", "SimulatorThread", "parse_token", "run_simulator", "start_in_thread"]
