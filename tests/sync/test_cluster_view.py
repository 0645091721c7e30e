"""Which /cluster/resources entries the sync takes as our pool's guests (respx: the
entries here are shaped to test the filter, the simulator always sends `pool`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from openvle_core.proxmox import ProxmoxClient, RetryPolicy
from openvle_core.settings import ProxmoxSettings
from openvle_core.sync.cluster import fetch_cluster

BASE = "https://pve.test:8006/api2/json"
POOL = "OpenVLE-VMs"


def guest(vmid: int, pool: str | None = None, kind: str = "qemu") -> dict[str, Any]:
    entry = {"id": f"{kind}/{vmid}", "type": kind, "vmid": vmid, "node": "pve1"}
    entry |= {"status": "stopped", "name": f"vm-{vmid}", "template": 0}
    return entry | ({"pool": pool} if pool is not None else {})


NODE = {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(BASE + "/version").respond(json={"data": {"version": "9.1.1", "release": "9.1"}})
        yield router


async def view_of(entries: list[dict[str, Any]]) -> tuple[set[int], int]:
    settings = ProxmoxSettings(
        hostname="pve.test:8006",
        user="openvle@pve",
        token_name="ci",
        token_value=SecretStr("s3"),
        vms_pool=POOL,
    )
    async with httpx.AsyncClient() as http:
        client = ProxmoxClient(http, settings, retry=RetryPolicy(attempts=1))
        view = await fetch_cluster(client, POOL)
    return set(view.guests), len(view.nodes)


async def test_guests_are_taken_by_their_pool_field(mock: respx.MockRouter) -> None:
    pool_entry = {"id": f"pool/{POOL}", "type": "pool", "pool": POOL}  # not a guest
    entries = [guest(100, POOL), guest(101, "Other-Team"), guest(102), guest(103, POOL, "lxc")]
    entries += [{**guest(104, POOL), "vmid": None}, pool_entry, NODE]
    mock.get(BASE + "/cluster/resources").respond(json={"data": entries})
    members = mock.get(BASE + "/pools")
    assert await view_of(entries) == ({100, 103}, 1)
    assert not members.called  # the pool fields said it all


async def test_an_empty_pool_beside_other_pools_is_empty(mock: respx.MockRouter) -> None:
    entries = [guest(101, "Other-Team"), guest(102), NODE]
    mock.get(BASE + "/cluster/resources").respond(json={"data": entries})
    members = mock.get(BASE + "/pools")
    assert await view_of(entries) == (set(), 1)
    assert not members.called


async def test_without_pool_fields_the_members_decide(mock: respx.MockRouter) -> None:
    """A token without Pool.Audit is shown no `pool` field: the member list decides."""
    entries = [guest(100), guest(101), guest(102, kind="lxc"), NODE]
    mock.get(BASE + "/cluster/resources").respond(json={"data": entries})
    listed = [{"id": "qemu/100", "type": "qemu", "vmid": 100}]
    listed += [{"id": "lxc/102", "type": "lxc", "vmid": 102}]
    members = mock.get(BASE + "/pools", params={"poolid": POOL}).respond(
        json={"data": [{"poolid": POOL, "members": listed}]}
    )
    assert await view_of(entries) == ({100, 102}, 1)
    assert members.call_count == 1
