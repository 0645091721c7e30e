"""Operations: the one-in-flight-per-target guard holds across connections, on both DBs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from openvle_core.db.enums import OperationState
from openvle_core.db.models import Operation
from openvle_core.db.session import session_factory
from openvle_core.operations.errors import TargetBusy
from openvle_core.operations.repository import OperationRepository


async def test_second_operation_on_a_busy_vm_is_refused(db_session: AsyncSession) -> None:
    repo = OperationRepository(db_session)
    vm = str(uuid.uuid4())
    start = await repo.create("start", "vm", vm)
    with pytest.raises(TargetBusy) as caught:
        await repo.create("stop", "vm", vm)
    assert caught.value.holder_id == start.id
    # another VM, and a non-exclusive operation on the same VM, are fine
    await repo.create("start", "vm", str(uuid.uuid4()))
    watcher = await repo.create("refresh", "vm", vm, exclusive=False)
    assert watcher.lock_key is None
    assert await repo.busy_targets("vm") >= {vm}


async def test_finish_releases_the_target(db_session: AsyncSession) -> None:
    repo = OperationRepository(db_session)
    vm = str(uuid.uuid4())
    op = await repo.create("clone", "vm", vm, params={"full": True}, total=1)
    await repo.mark_running(op)
    await repo.add_upid(op, "UPID:pve1:0001:clone")
    await repo.set_progress(op.id, 1)
    await repo.finish(op, OperationState.SUCCEEDED, result={"vmid": 101})
    op_id = op.id
    db_session.expire_all()
    done = await repo.require(op_id)
    assert (done.state, done.attempts, done.progress_done) == ("succeeded", 1, 1)
    assert done.upids == ["UPID:pve1:0001:clone"]
    assert done.params == {"full": True}
    assert done.result == {"vmid": 101}
    assert done.finished_at is not None
    assert done.lock_key is None
    assert vm not in await repo.busy_targets("vm")
    assert (await repo.create("start", "vm", vm)).state == "queued"


async def test_queued_operation_takes_the_lock_when_free(db_session: AsyncSession) -> None:
    repo = OperationRepository(db_session)
    vm = str(uuid.uuid4())
    start = await repo.create("start", "vm", vm)
    stop = await repo.create("stop", "vm", vm, exclusive=False)
    assert await repo.try_lock(stop) is False
    assert stop.lock_key is None
    await repo.finish(start, OperationState.SUCCEEDED)
    assert await repo.try_lock(stop) is True
    assert (await repo.holder("vm", vm)) is stop


async def test_list_filters_newest_first_and_children(db_session: AsyncSession) -> None:
    repo = OperationRepository(db_session)
    event = str(uuid.uuid4())
    parent = await repo.create("deploy", "event", event, total=2)
    kids = [await repo.create("clone", "vm", str(uuid.uuid4()), parent_id=parent.id) for _ in "ab"]
    assert [c.id for c in await repo.children(parent.id)] == [k.id for k in kids]
    page = await repo.list(target=event)
    assert [o.id for o in page.items] == [parent.id]
    newest = await repo.list(kind="clone", limit=1)
    assert newest.items[0].id == kids[-1].id
    assert newest.next_cursor is not None
    assert len((await repo.list(state="queued", limit=500)).items) >= 3


async def test_guard_holds_across_concurrent_connections(db_engine: AsyncEngine) -> None:
    factory = session_factory(db_engine)
    vm = str(uuid.uuid4())

    async def request(kind: str) -> str:
        async with factory() as session, session.begin():
            return (await OperationRepository(session).create(kind, "vm", vm)).id

    results = await asyncio.gather(
        *(request(k) for k in ("start", "stop", "reset")), return_exceptions=True
    )
    try:
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1
        assert all(isinstance(r, TargetBusy) for r in results if not isinstance(r, str))
    finally:
        async with factory() as session, session.begin():
            await session.execute(delete(Operation).where(Operation.target_id == vm))
