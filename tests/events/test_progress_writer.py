"""The parent's progress as its children succeed: one write for the VMs that end within
`PROGRESS_EVERY_S`, the exact count at the end, nothing written after a stop, and a
failed write caught up by the next one (a real SQLite database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation
from openvle_core.db.session import create_engine, reading, session_factory, transaction
from openvle_core.events import batch
from openvle_core.events.batch import Progress
from openvle_core.operations.kinds import OperationKind
from openvle_core.operations.repository import OperationRepository


@pytest.fixture
async def parent(tmp_path: Path) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'progress.sqlite3'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        op = await OperationRepository(session).create(
            OperationKind.EVENT_DEPLOY, "event", "ev-1", total=10
        )
    try:
        yield sessions, op.id
    finally:
        await engine.dispose()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each progress write (the count written), through the real one."""
    seen: list[int] = []
    real = batch.set_progress

    async def counting(
        sessions: async_sessionmaker[AsyncSession], parent_id: str, done: int, total: int
    ) -> None:
        seen.append(done)
        await real(sessions, parent_id, done, total)

    monkeypatch.setattr(batch, "set_progress", counting)
    monkeypatch.setattr(batch, "PROGRESS_EVERY_S", 0.05)
    return seen


async def stored(sessions: async_sessionmaker[AsyncSession], op_id: str) -> int:
    async with reading(sessions) as session:
        op = await session.get(Operation, op_id)
        assert op is not None
        return op.progress_done


async def until(condition: Callable[[], object], tries: int = 200) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


async def test_successes_close_together_make_one_write(
    parent: tuple[async_sessionmaker[AsyncSession], str], writes: list[int]
) -> None:
    sessions, op_id = parent
    progress = Progress(sessions, op_id, 2, 10)  # 2 done by an earlier round
    for _ in range(5):
        progress.add()
    await until(lambda: writes)
    assert writes == [7]
    assert await stored(sessions, op_id) == 7
    progress.add()
    await progress.close()  # the pending write is not waited for: close writes it
    assert writes == [7, 8]
    assert await stored(sessions, op_id) == 8
    await progress.close()  # nothing new: no write
    assert writes == [7, 8]


async def test_a_stopped_deploy_writes_nothing_more(
    parent: tuple[async_sessionmaker[AsyncSession], str], writes: list[int]
) -> None:
    sessions, op_id = parent
    progress = Progress(sessions, op_id, 0, 10)
    progress.add()
    await progress.drop()  # as run_children does when stopped or failed
    await asyncio.sleep(0.1)  # past PROGRESS_EVERY_S: the dropped write never comes
    assert writes == []
    assert await stored(sessions, op_id) == 0


async def test_a_failed_write_is_caught_up(
    parent: tuple[async_sessionmaker[AsyncSession], str],
    writes: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions, op_id = parent
    counting = batch.set_progress
    failures = [RuntimeError("database went away")]

    async def failing_once(
        sessions: async_sessionmaker[AsyncSession], parent_id: str, done: int, total: int
    ) -> None:
        if failures:
            writes.append(-done)
            raise failures.pop()
        await counting(sessions, parent_id, done, total)

    monkeypatch.setattr(batch, "set_progress", failing_once)
    progress = Progress(sessions, op_id, 0, 10)
    progress.add()
    await until(lambda: writes)
    assert writes == [-1]  # failed, logged, not raised
    progress.add()
    await progress.close()
    assert writes == [-1, 2]
    assert await stored(sessions, op_id) == 2
