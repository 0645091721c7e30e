"""The client's total-time retry bound, and the Prometheus observer's error counter, on
the simulator's real faults (attempt counts, never wall-clock assertions)."""

from __future__ import annotations

import pytest

from openvle_core.metrics import REGISTRY, PrometheusObserver
from openvle_core.proxmox import (
    CallStats,
    ProxmoxClient,
    ProxmoxNotFound,
    ProxmoxUnavailable,
    RetryPolicy,
    build_http_client,
)
from openvle_pvesim import Simulator
from tests.proxmox.simclient import FAST_POLL, Sent, settings_for

NODE, VMID = "pve1", 9000
STATUS_GLOB = "/nodes/*/qemu/*/status/current"
STATUS_PATH = f"/nodes/{NODE}/qemu/{VMID}/status/current"


async def test_a_get_stops_retrying_once_the_time_budget_is_spent(sim: Simulator) -> None:
    # Every attempt hangs until the 0.3 s read timeout, longer than the whole 0.1 s budget:
    # after the first attempt no retry fits, although ten attempts would be allowed.
    settings = settings_for(sim).model_copy(update={"read_timeout": 0.3})
    policy = RetryPolicy(attempts=10, base_delay=0.001, max_delay=0.01, total_time=0.1)
    sent, stats = Sent(), CallStats()
    async with build_http_client(settings) as http:
        http.event_hooks["request"].append(sent.hook)
        client = ProxmoxClient(http, settings, retry=policy, observer=stats, poll=FAST_POLL)
        await client.cluster_resources("vm")
        sim.faults.add("hang", STATUS_GLOB, method="GET")
        with pytest.raises(ProxmoxUnavailable):
            await client.vm_status(NODE, VMID)
    assert sent.count("GET", STATUS_PATH) == 1
    assert sum(stats.retries.values()) == 0


def errors_counted(kind: str) -> float:
    return REGISTRY.get_sample_value("openvle_proxmox_errors_total", {"kind": kind}) or 0.0


async def test_the_error_metric_counts_a_real_simulator_error_by_kind(sim: Simulator) -> None:
    settings = settings_for(sim)
    before = errors_counted("ProxmoxNotFound")
    async with build_http_client(settings) as http:
        client = ProxmoxClient(http, settings, observer=PrometheusObserver(), poll=FAST_POLL)
        await client.cluster_resources("vm")  # the pool guard learns its VMs
        with pytest.raises(ProxmoxNotFound, match="does not exist") as info:
            await client.vm_status("pve2", VMID)  # the VM lives on pve1: PVE answers an error
    assert type(info.value) is ProxmoxNotFound
    assert errors_counted("ProxmoxNotFound") - before == 1
