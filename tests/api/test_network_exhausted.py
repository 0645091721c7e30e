"""POST /vms with cloud-init on: a VM network with no free address left answers 409."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from openvle_api.app import create_app
from openvle_core.db.models import Vm
from openvle_core.ipam.repository import IpAllocationRepository
from openvle_core.settings import CloudInitSettings
from tests.api.kit import Api, seed, template

NETWORK = "10.250.0.0/30"  # hosts .1 (the gateway) and .2: one usable address


@pytest.fixture
async def ci_client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """The app with PVE_CI_ENABLED=True on a /30 VM network."""
    cloudinit = CloudInitSettings(
        _env_file=None,
        PVE_CI_ENABLED=True,
        network="10.250.0.0",
        subnet="30",
        gateway="10.250.0.1",
    )
    settings = api.settings.model_copy(update={"cloudinit": cloudinit})
    runtime = dataclasses.replace(api.runtime, settings=settings)
    transport = httpx.ASGITransport(app=create_app(settings, runtime, auth_cache_ttl=0.0))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def _take_last_address(api: Api, *, taken: bool) -> None:
    async with api.runtime.sessions() as session, session.begin():
        repo = IpAllocationRepository(session)
        if taken:
            assert await repo.try_allocate(NETWORK, "10.250.0.2", None)
        else:
            assert await repo.release(NETWORK, "10.250.0.2")


async def test_exhausted_network_refuses_the_clone(api: Api, ci_client: httpx.AsyncClient) -> None:
    tpl = template(9600, "tpl-9600")
    await seed(api.runtime.sessions, tpl)
    body = {"template_id": tpl.id, "name": "full-net"}
    await _take_last_address(api, taken=True)
    try:
        got = await ci_client.post("/api/v1/vms", json=body, headers=api.auth())
    finally:
        await _take_last_address(api, taken=False)
    assert got.status_code == 409
    assert got.headers["content-type"].startswith("application/problem+json")
    assert got.json()["detail"] == f"no free IPv4 address left in network {NETWORK}"
    assert await _vms_named(api, "full-net") == 0  # nothing was staged
    got = await ci_client.post("/api/v1/vms", json=body, headers=api.auth())
    assert got.status_code == 202
    assert await _vms_named(api, "full-net") == 1


async def _vms_named(api: Api, name: str) -> int:
    async with api.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Vm.name == name)) or 0)
