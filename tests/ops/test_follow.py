"""`openvle follow`: an operation's progress read from the database until it finishes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openvle_cli.main import main
from openvle_cli.progress import OperationView, follow_operation
from openvle_core.db.enums import OperationState
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.session import create_engine, session_factory, transaction
from openvle_core.operations.repository import OperationRepository


async def make_db(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_to_head(url)
    return url


async def new_operation(url: str, total: int) -> str:
    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            op = await OperationRepository(session).create(
                "event.deploy", "event", "e1", total=total
            )
            return op.id
    finally:
        await engine.dispose()


async def test_follow_sees_progress_until_the_end(tmp_path: Path) -> None:
    url = await make_db(tmp_path / "db.sqlite3")
    op_id = await new_operation(url, total=3)
    engine = create_engine(url)
    sessions = session_factory(engine)
    views: list[OperationView] = []

    async def work() -> None:
        for done in (1, 2, 3):
            await asyncio.sleep(0.05)
            async with transaction(sessions) as session:
                op = await OperationRepository(session).require(op_id)
                op.state, op.progress_done = "running", done
        async with transaction(sessions) as session:
            repo = OperationRepository(session)
            await repo.finish(await repo.require(op_id), OperationState.SUCCEEDED)

    try:
        worker = asyncio.create_task(work())
        final = await follow_operation(sessions, op_id, views.append, poll=0.01)
        await worker
    finally:
        await engine.dispose()
    assert views[0].state == "queued"
    assert (final.state, final.done, final.total) == ("succeeded", 3, 3)
    assert views[-1] == final
    assert [v.done for v in views] == sorted(v.done for v in views)
    assert len(views) >= 3  # queued, some running steps, succeeded
    assert final.kind == "event.deploy"
    assert final.target == "event e1"


def test_cli_exit_status_follows_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = asyncio.run(make_db(tmp_path / "db.sqlite3"))
    op_id = asyncio.run(new_operation(url, total=0))

    async def fail() -> None:
        engine = create_engine(url)
        try:
            async with transaction(session_factory(engine)) as session:
                repo = OperationRepository(session)
                await repo.finish(
                    await repo.require(op_id),
                    OperationState.FAILED,
                    error_type="Boom",
                    error_message="boom",
                )
        finally:
            await engine.dispose()

    asyncio.run(fail())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    assert main(["follow", op_id]) == 1
    assert f"operation {op_id} failed: boom" in capsys.readouterr().out
    assert main(["follow", "no-such-id"]) == 1
    assert "not found" in capsys.readouterr().err
