"""Fault injection on the simulator: GETs survive transient failures, no POST is sent twice."""

from __future__ import annotations

import httpx
import pytest

from openvle_core.proxmox import ProxmoxUnavailable
from tests.proxmox.simclient import Harness, open_harness, settings_for

NODE, VMID = "pve1", 9000
STATUS_PATH = f"/nodes/{NODE}/qemu/{VMID}/status/current"
CLONE_PATH = f"/nodes/{NODE}/qemu/{VMID}/clone"
STATUS_GLOB = "/nodes/*/qemu/*/status/current"
CLONE_GLOB = "/nodes/*/qemu/*/clone"


@pytest.mark.parametrize("status", [502, 595, 596])
async def test_get_survives_transient_status(h: Harness, status: int) -> None:
    await h.client.cluster_resources("vm")
    h.sim.faults.add("status", STATUS_GLOB, method="GET", status=status, n=2)
    assert (await h.client.vm_status(NODE, VMID)).vmid == VMID
    assert h.sent.count("GET", STATUS_PATH) == 3
    assert h.stats.retries[("GET", "/nodes/{node}/qemu/{vmid}/status/current")] == 2


async def test_get_survives_a_reset(h: Harness) -> None:
    await h.client.cluster_resources("vm")
    h.sim.faults.add("reset", STATUS_GLOB, method="GET", n=1)
    assert (await h.client.vm_status(NODE, VMID)).vmid == VMID
    assert h.sent.count("GET", STATUS_PATH) == 2


async def test_get_survives_a_hang_through_the_read_timeout(h: Harness) -> None:
    settings = settings_for(h.sim).model_copy(update={"read_timeout": 0.3})
    stack: list[httpx.AsyncClient] = []
    quick = await open_harness(h.sim, settings, stack)
    try:
        await quick.client.cluster_resources("vm")
        h.sim.faults.add("hang", STATUS_GLOB, method="GET", n=1)
        assert (await quick.client.vm_status(NODE, VMID)).vmid == VMID
        assert quick.sent.count("GET", STATUS_PATH) == 2
        assert quick.stats.errors["ProxmoxUnavailable"] == 1
    finally:
        await stack[0].aclose()


async def test_get_gives_up_after_the_attempt_bound(h: Harness) -> None:
    await h.client.cluster_resources("vm")
    h.sim.faults.add("status", STATUS_GLOB, method="GET", status=502)
    with pytest.raises(ProxmoxUnavailable) as info:
        await h.client.vm_status(NODE, VMID)
    assert info.value.status == 502
    assert h.sent.count("GET", STATUS_PATH) == 4  # FAST_RETRY.attempts


@pytest.mark.parametrize("fault", ["status=502", "status=596", "reset"])
async def test_post_is_never_sent_twice(h: Harness, fault: str) -> None:
    await h.client.cluster_resources("vm")
    kind, _, code = fault.partition("=")
    h.sim.faults.add(kind, CLONE_GLOB, method="POST", status=int(code) if code else None)
    vms_before = set(h.sim.cluster.vms)
    newid = await h.client.next_vmid()
    with pytest.raises(ProxmoxUnavailable) as info:
        await h.client.clone_vm(NODE, VMID, newid)
    assert not info.value.retry_safe
    assert h.sent.count("POST", CLONE_PATH) == 1
    assert set(h.sim.cluster.vms) == vms_before
