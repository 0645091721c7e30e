"""PVE before 8.1 has no `/pools?poolid=`: the client must use `/pools/{poolid}` there.

The simulator speaks 8.4 and 9.1 only, so this older branch is driven through respx
with the response shapes of the 8.0 schema (GET returns an object, PUT takes `vms`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from openvle_core.proxmox import OutsidePool, ProxmoxClient, RetryPolicy
from openvle_core.settings import ProxmoxSettings

BASE = "https://pve8-0.test:8006/api2/json"
FAST = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002, total_time=5.0)
MEMBER = {"id": "qemu/120", "type": "qemu", "vmid": 120, "node": "pve1", "status": "stopped"}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(BASE + "/version").respond(
            json={"data": {"version": "8.0.4", "release": "8.0", "repoid": "deadbeef"}}
        )
        yield router


@pytest.fixture
async def client() -> AsyncIterator[ProxmoxClient]:
    settings = ProxmoxSettings(
        hostname="pve8-0.test:8006", user="openvle@pve", token_name="ci", token_value=SecretStr("s")
    )
    async with httpx.AsyncClient() as http:
        yield ProxmoxClient(http, settings, retry=FAST)


async def test_pool_read_and_update_use_the_path_form_before_8_1(
    mock: respx.MockRouter, client: ProxmoxClient
) -> None:
    query_form = mock.get(BASE + "/pools")
    read = mock.get(BASE + "/pools/OpenVLE-VMs").respond(
        json={"data": {"members": [MEMBER], "comment": "labs"}}
    )
    update = mock.put(BASE + "/pools/OpenVLE-VMs").respond(json={"data": None})

    pool = await client.get_pool()
    await client.add_to_pool([121])

    assert (pool.poolid, pool.comment, [m.vmid for m in pool.members]) == (
        "OpenVLE-VMs",
        "labs",
        [120],
    )
    assert read.call_count == 1
    assert not query_form.called
    sent = parse_qs(update.calls.last.request.content.decode())
    assert sent["vms"] == ["121"]
    assert "poolid" not in sent  # the id is in the path on 8.0
    assert client.pool_members.keys() == {120, 121}


async def test_guard_refuses_a_vm_the_legacy_pool_read_does_not_list(
    mock: respx.MockRouter, client: ProxmoxClient
) -> None:
    mock.get(BASE + "/pools/OpenVLE-VMs").respond(json={"data": {"members": [MEMBER]}})
    status = mock.get(BASE + "/nodes/pve1/qemu/999/status/current")
    with pytest.raises(OutsidePool):
        await client.vm_status("pve1", 999)
    assert not status.called  # refused before any VM-level request
