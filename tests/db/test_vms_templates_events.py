"""VM, template and event repositories on SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db.enums import EventStatus, VmStatus
from openvle_core.db.errors import InvalidCursor
from openvle_core.db.models import Event, Template, Vm
from openvle_core.events.errors import SlugTaken
from openvle_core.events.repository import EventRepository
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.errors import VmNotFound
from openvle_core.vms.queries import list_vm_rows
from openvle_core.vms.repository import VmRepository

T0 = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


class SessionReader:
    """A RowReader on the test's session, so it sees the test's uncommitted rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        return (await self.session.execute(stmt, dict(params or {}))).all()


async def _template(session: AsyncSession, vmid: int = 9000) -> Template:
    return await TemplateRepository(session).add(Template(vmid=vmid, name=f"tpl-{vmid}"))


async def _event(session: AsyncSession, slug: str, tids: list[str]) -> Event:
    event = Event(slug=slug, name=slug, starts_at=T0, ends_at=T0 + timedelta(hours=2))
    event.participants = 3
    return await EventRepository(session).add(event, tids)


async def test_vm_round_trip_keeps_utc_and_defaults(db_session: AsyncSession) -> None:
    tpl = await _template(db_session)
    repo = VmRepository(db_session)
    vm = await repo.add(Vm(name="lab-1", vmid=101, template_id=tpl.id))
    db_session.expunge_all()
    loaded = await repo.require(vm.id)
    assert loaded.status == VmStatus.CLONING
    assert loaded.full_clone is False
    assert loaded.created_at.tzinfo is UTC
    assert abs(loaded.created_at - vm.created_at) < timedelta(milliseconds=1)
    assert (await repo.get_by_vmid(101)) is not None
    with pytest.raises(VmNotFound):
        await repo.require("00000000-0000-7000-8000-000000000000")


async def test_vm_filters_and_pagination(db_session: AsyncSession) -> None:
    tpl = await _template(db_session)
    event = await _event(db_session, "ws-a", [tpl.id])
    repo = VmRepository(db_session)
    for i in range(5):
        await repo.add(
            Vm(name=f"v{i}", vmid=200 + i, template_id=tpl.id, event_id=event.id, node="pve1")
        )
    await repo.add(Vm(name="other", vmid=300, template_id=tpl.id, node="pve2"))

    reader = SessionReader(db_session)
    first = await list_vm_rows(reader, event_id=event.id, limit=2)
    assert [v.name for v in first.items] == ["v0", "v1"]
    assert first.next_cursor is not None
    second = await list_vm_rows(reader, event_id=event.id, limit=2, cursor=first.next_cursor)
    third = await list_vm_rows(reader, event_id=event.id, limit=2, cursor=second.next_cursor)
    assert [v.name for v in second.items + third.items] == ["v2", "v3", "v4"]
    assert third.next_cursor is None
    assert [v.name for v in (await list_vm_rows(reader, node="pve2")).items] == ["other"]
    assert (await list_vm_rows(reader, status="running")).items == []
    assert await TemplateRepository(db_session).count_vms(tpl.id) == 6
    with pytest.raises(InvalidCursor):
        await list_vm_rows(reader, cursor="not-a-cursor")


async def test_bulk_update_touches_only_given_rows(db_session: AsyncSession) -> None:
    repo = VmRepository(db_session)
    ids = [vm.id for vm in await repo.add_many([Vm(name=f"b{i}", vmid=400 + i) for i in range(4)])]
    changed = await repo.bulk_update(
        [
            {"id": ids[0], "status": VmStatus.RUNNING.value, "ipv4": "10.0.0.5"},
            {"id": ids[2], "node": "pve3"},
        ]
    )
    assert changed == 2
    db_session.expire_all()
    views = {v.name: v for v in await repo.views()}
    assert (views["b0"].status, views["b0"].ipv4) == ("running", "10.0.0.5")
    assert views["b1"].status == "cloning"
    assert views["b2"].node == "pve3"
    assert [v.id for v in await repo.views_of([ids[1], "nope"])] == [ids[1]]
    assert await repo.delete(ids[3]) is True
    assert await repo.delete(ids[3]) is False


async def test_event_slug_is_unique_and_templates_keep_order(db_session: AsyncSession) -> None:
    t1, t2 = await _template(db_session, 9001), await _template(db_session, 9002)
    events = EventRepository(db_session)
    event = await _event(db_session, "exam1", [t2.id, t1.id])
    assert await events.template_ids(event.id) == [t2.id, t1.id]
    with pytest.raises(SlugTaken):
        await _event(db_session, "exam1", [t1.id])
    # the failed insert did not poison the transaction
    assert (await events.get_by_slug("exam1")) is not None
    other = await _event(db_session, "exam2", [t1.id])
    other_id = other.id
    with pytest.raises(SlugTaken):
        await events.update(other, slug="exam1")
    assert (await events.require(other_id)).slug == "exam2"
    renamed = await events.update(await events.require(event.id), name="Exam one", slug="exam9")
    assert (renamed.name, renamed.slug) == ("Exam one", "exam9")
    assert await events.get_by_slug("exam1") is None


async def test_events_due_for_deploy_and_archive(db_session: AsyncSession) -> None:
    tpl = await _template(db_session)
    events = EventRepository(db_session)
    event = await _event(db_session, "due1", [tpl.id])
    before = T0 - timedelta(minutes=30)
    assert await events.due_for_deploy(before, timedelta(0)) == []
    assert [e.slug for e in await events.due_for_deploy(before, timedelta(hours=1))] == ["due1"]
    event.status = EventStatus.DEPLOYED.value
    await db_session.flush()
    after_end = event.ends_at + timedelta(minutes=10)
    assert await events.due_for_archive(after_end, timedelta(hours=1)) == []
    due = await events.due_for_archive(after_end, timedelta(minutes=5))
    assert [e.slug for e in due] == ["due1"]


async def test_template_bulk_update_and_pages(db_session: AsyncSession) -> None:
    repo = TemplateRepository(db_session)
    ids = [(await _template(db_session, 9100 + i)).id for i in range(3)]
    await repo.bulk_update([{"id": ids[1], "cores": 4, "memory_mb": 2048}])
    db_session.expire_all()
    fresh = await repo.require(ids[1])
    assert (fresh.cores, fresh.memory_mb) == (4, 2048)
    page = await repo.list(limit=2)
    assert len(page.items) == 2
    assert page.next_cursor is not None
    assert (await repo.get_by_vmid(9102)) is not None
