"""POST /templates {"source_vmid"}: only a VM of our pool at the last sync is accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openvle_pvesim import Simulator, run_simulator
from tests.api.kit import Api, sync

OTHER_TEAM_VMID = 200  # the demo seed's ot-web-01, in pool Other-Team


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Simulator]:
    """This module's own cluster: the demo seed plus two ordinary VMs in our pool."""
    async with run_simulator(version="9.1", tls=True, time_scale=0.0, vms=2) as simulator:
        yield simulator


async def _create(api: Api, vmid: int) -> tuple[int, dict[str, object]]:
    got = await api.client.post(
        "/api/v1/templates", json={"source_vmid": vmid}, headers=api.auth("admin")
    )
    return got.status_code, got.json()


async def test_before_any_sync_no_vmid_is_known(api: Api) -> None:
    status, body = await _create(api, OTHER_TEAM_VMID)
    assert status == 404
    assert body["detail"] == "VM 200 is not known to be in pool OpenVLE-VMs: no sync has run yet"


async def test_other_pool_is_404_and_our_pool_is_202(api: Api) -> None:
    await sync(api)
    ours = await api.runtime.snapshot.list(type="qemu", pool="OpenVLE-VMs")
    member = next(int(r["vmid"]) for r in ours if not r.get("template"))
    status, body = await _create(api, OTHER_TEAM_VMID)
    assert status == 404
    assert body["status"] == 404
    assert "VM 200 is not a member of pool OpenVLE-VMs as of the last sync (" in body["detail"]
    status, body = await _create(api, member)
    assert status == 202, body
    assert body["kind"] == "template.create"
    assert body["target_id"] == str(member)
