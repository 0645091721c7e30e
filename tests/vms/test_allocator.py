"""The IP allocator under concurrency on both backends: never one address twice (on
MariaDB the inserts may deadlock; the engine reruns such a transaction)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from openvle_core.db.models import IpAllocation, Vm
from openvle_core.db.session import in_transaction, session_factory, transaction
from openvle_core.db.types import new_id
from openvle_core.ipam.allocator import allocate_ip
from openvle_core.ipam.errors import NetworkExhausted
from openvle_core.settings import CloudInitSettings

SETTINGS = CloudInitSettings(
    _env_file=None,  # type: ignore[call-arg]
    PVE_CI_ENABLED=True,  # type: ignore[call-arg]
    network="10.40.0.0",  # type: ignore[arg-type]
    subnet="28",
    gateway="10.40.0.1",  # type: ignore[arg-type]
    excluded_ips="10.40.0.14",
)


async def test_concurrent_allocations_are_distinct(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    vms = [Vm(name=f"ip-{n}", status="cloning") for n in range(13)]
    async with transaction(sessions) as session:
        session.add_all(vms)

    async def one(n: int) -> str:
        async def allocate(session: AsyncSession) -> IPv4Address:
            return await allocate_ip(session, SETTINGS, vms[n].id)

        return str(await in_transaction(sessions, allocate))

    try:
        got = await asyncio.gather(*(one(n) for n in range(12)))
        assert await one(0) == got[0]  # asking again gives the VM its own address
        assert len(set(got)) == 12  # .2-.13: 12 hosts after gateway and the exclusion
        assert "10.40.0.1" not in got
        assert "10.40.0.14" not in got
        with pytest.raises(NetworkExhausted, match=r"10\.40\.0\.0/28"):
            await one(12)
    finally:
        async with transaction(sessions) as session:
            await session.execute(delete(IpAllocation))
            await session.execute(delete(Vm).where(Vm.id.in_([vm.id for vm in vms])))


def with_dns(dns: str) -> CloudInitSettings:
    return CloudInitSettings(
        _env_file=None,  # type: ignore[call-arg]
        PVE_CI_ENABLED=True,  # type: ignore[call-arg]
        network="10.40.0.0",  # type: ignore[arg-type]
        subnet="29",
        gateway="10.40.0.1",  # type: ignore[arg-type]
        dns=dns,
    )


async def test_dns_servers_and_reserved_addresses_are_never_handed_out(
    db_engine: AsyncEngine,
) -> None:
    settings = with_dns("10.40.0.2, 192.0.2.53")  # one DNS server inside the network
    assert {str(a) for a in settings.reserved_addresses} == {
        "10.40.0.0",
        "10.40.0.1",
        "10.40.0.2",
        "10.40.0.7",
        "192.0.2.53",
    }
    sessions = session_factory(db_engine)
    vms = [Vm(id=new_id(), name=f"dns-{n}", status="cloning") for n in range(5)]
    async with transaction(sessions) as session:
        session.add_all(vms)
        await session.flush()
        # a VM that got the DNS server's address before the rule: it is moved, not kept
        session.add(IpAllocation(network="10.40.0.0/29", address="10.40.0.2", vm_id=vms[0].id))

    async def one(n: int) -> str:
        async with transaction(sessions) as session:
            return str(await allocate_ip(session, settings, vms[n].id))

    try:
        got = [await one(n) for n in range(4)]
        assert got == ["10.40.0.3", "10.40.0.4", "10.40.0.5", "10.40.0.6"]
        async with transaction(sessions) as session:
            held = await session.scalars(select(IpAllocation.address).order_by(IpAllocation.id))
            assert "10.40.0.2" not in held.all()  # the old claim on the DNS address is gone
        with pytest.raises(NetworkExhausted):
            await one(4)
    finally:
        async with transaction(sessions) as session:
            await session.execute(delete(IpAllocation))
            await session.execute(delete(Vm).where(Vm.id.in_([vm.id for vm in vms])))
