"""Rows updated by primary key in one statement (`db.bulk`), on SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from openvle_core.db import bulk
from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Template, Vm
from openvle_core.templates.repository import TemplateRepository
from openvle_core.vms.repository import VmRepository


@contextmanager
def updates(session: AsyncSession) -> Iterator[list[int]]:
    """Parameter sets of each UPDATE sent (an executemany counts each of its rows)."""
    sent: list[int] = []
    engine = session.bind.engine.sync_engine  # type: ignore[union-attr]

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            sent.append(len(params) if many else 1)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def test_many_rows_each_their_own_columns_in_one_statement(
    db_session: AsyncSession,
) -> None:
    repo = VmRepository(db_session)
    made = await repo.add_many(
        [Vm(name=f"u{i}", vmid=500 + i, node="pve1", ipv4=f"10.0.0.{i}") for i in range(8)]
    )
    ids = [vm.id for vm in made]
    changes: list[dict[str, Any]] = [
        {"id": ids[i], "status": VmStatus.RUNNING.value, "node": f"pve{i}"} for i in range(3)
    ]
    changes += [
        {"id": ids[3], "ipv4": None, "ipv4_duplicate": True},  # NULL and a boolean
        {"id": ids[4], "vmid": 600, "identity_ctime": 1_700_000_000},
        {"id": ids[5], "name": "renamed"},
    ]
    with updates(db_session) as sent:
        assert await repo.bulk_update(changes) == 6
    assert sent == [1]  # one statement for the six rows, not an executemany
    db_session.expire_all()
    views = {v.id: v for v in await repo.views()}
    for i in range(3):
        assert (views[ids[i]].status, views[ids[i]].node) == ("running", f"pve{i}")
        assert views[ids[i]].ipv4 == f"10.0.0.{i}"  # a column the row did not name is kept
    assert (views[ids[3]].ipv4, views[ids[3]].ipv4_duplicate) == (None, True)
    assert views[ids[3]].status == VmStatus.CLONING.value
    assert (views[ids[4]].vmid, views[ids[4]].identity_ctime) == (600, 1_700_000_000)
    assert (views[ids[5]].name, views[ids[5]].node) == ("renamed", "pve1")
    for i in (6, 7):  # rows not given are not touched
        assert (views[ids[i]].name, views[ids[i]].status) == (f"u{i}", VmStatus.CLONING.value)


async def test_rows_go_in_chunks(db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 3)
    repo = TemplateRepository(db_session)
    ids = []
    for i in range(7):
        template = Template(vmid=9100 + i, name=f"t{i}", node="pve1", status="available")
        await repo.add(template)
        ids.append(template.id)
    await db_session.flush()
    with updates(db_session) as sent:
        await repo.bulk_update([{"id": tid, "cores": n + 1} for n, tid in enumerate(ids)])
    assert sent == [1, 1, 1]  # 3 + 3 + 1 rows
    db_session.expire_all()
    cores = {t.id: t.cores for t in await repo.all()}
    assert [cores[tid] for tid in ids] == [1, 2, 3, 4, 5, 6, 7]
