"""Nodes, changelog, API tokens, IP allocations and vmid reservations, on both DBs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.changelog.repository import Change, ChangelogRepository
from openvle_core.db.enums import ChangeSource, TokenScope
from openvle_core.db.models import Vm
from openvle_core.guests.repository import VmidReservationRepository
from openvle_core.ipam.repository import IpAllocationRepository
from openvle_core.nodes.repository import NodeRepository
from openvle_core.tokens.errors import TokenNotFound
from openvle_core.tokens.repository import ApiTokenRepository, hash_token
from openvle_core.vms.repository import VmRepository


async def test_nodes_upsert_reports_only_changes(db_session: AsyncSession) -> None:
    repo = NodeRepository(db_session)
    first = [
        {"name": "pve1", "status": "online", "cpu": 0.1, "maxcpu": 8, "mem": 1, "maxmem": 9},
        {"name": "pve2", "status": "online", "cpu": 0.2, "maxcpu": 8, "mem": 2, "maxmem": 9},
    ]
    assert sorted(await repo.upsert_many(first)) == ["pve1", "pve2"]
    second = [first[0], {**first[1], "status": "offline"}]
    assert await repo.upsert_many(second) == ["pve2"]
    db_session.expire_all()
    assert [(n.name, n.status) for n in await repo.all()] == [
        ("pve1", "online"),
        ("pve2", "offline"),
    ]
    assert [n.name for n in (await repo.list(limit=1)).items] == ["pve1"]


async def test_changelog_bulk_insert_and_filters(db_session: AsyncSession) -> None:
    repo = ChangelogRepository(db_session)
    vm = str(uuid.uuid4())
    t = datetime(2030, 1, 1, tzinfo=UTC)
    changes = [
        Change("vm", vm, "status", "stopped", "running", time=t),
        Change("vm", vm, "node", "pve1", "pve2", time=t + timedelta(seconds=5)),
        Change("vm", str(uuid.uuid4()), "ipv4", None, "10.0.0.9", ChangeSource.OPERATION, t),
    ]
    assert await repo.add_many(changes) == 3
    mine = await repo.list(entity="vm", entity_id=vm)
    assert [(e.field, e.old, e.new) for e in mine.items] == [
        ("status", "stopped", "running"),
        ("node", "pve1", "pve2"),
    ]
    assert mine.items[0].time == t
    later = await repo.list(entity_id=vm, since=t + timedelta(seconds=1))
    assert [e.field for e in later.items] == ["node"]
    tail = await repo.after(mine.items[0].id)
    assert [e.field for e in tail][:2] == ["node", "ipv4"]
    assert tail[1].source == "operation"


async def test_tokens_are_stored_hashed_and_can_be_revoked(db_session: AsyncSession) -> None:
    repo = ApiTokenRepository(db_session)
    row, plain = await repo.create("ci", TokenScope.OPERATE)
    assert row.token_hash == hash_token(plain) != plain
    assert plain.startswith(row.prefix)
    assert (await repo.find_active(plain)) is row
    assert await repo.find_active(plain + "x") is None
    await repo.touch(row.id)
    await repo.revoke(row.id)
    assert await repo.find_active(plain) is None
    with pytest.raises(TokenNotFound):
        await repo.revoke(str(uuid.uuid4()))
    _old, old_plain = await repo.create(
        "old", TokenScope.READ, expires_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert await repo.find_active(old_plain) is None
    assert {t.name for t in await repo.list()} >= {"ci", "old"}


async def test_an_address_is_given_once(db_session: AsyncSession) -> None:
    repo = IpAllocationRepository(db_session)
    vm = await VmRepository(db_session).add(Vm(name="ip-vm"))
    net = "10.77.0.0/24"
    assert await repo.try_allocate(net, "10.77.0.10", vm.id) is True
    assert await repo.try_allocate(net, "10.77.0.10", None) is False
    assert await repo.try_allocate("10.78.0.0/24", "10.77.0.10", None) is True
    assert await repo.allocated(net) == {"10.77.0.10"}
    assert [a.address for a in await repo.for_vm(vm.id)] == ["10.77.0.10"]
    assert await repo.release_for_vm(vm.id) == 1
    assert await repo.allocated(net) == set()
    assert await repo.release("10.78.0.0/24", "10.77.0.10") is True


async def test_a_vmid_is_reserved_once(db_session: AsyncSession) -> None:
    repo = VmidReservationRepository(db_session)
    assert await repo.try_reserve(5001, vm_id="a") is True
    assert await repo.try_reserve(5001, vm_id="b") is False
    assert await repo.try_reserve(5002, vm_id="a") is True
    assert {5001, 5002} <= await repo.reserved()
    assert [r.vmid for r in await repo.for_vm("a")] == [5001, 5002]
    assert await repo.release(5001) is True
    assert await repo.get(5001) is None
