"""`openvle follow`: an operation and its VMs read from the database until it finishes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from openvle_cli.main import main
from openvle_cli.progress import LineLog
from openvle_cli.watch import Snapshot, follow_operation
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
    snaps: list[Snapshot] = []

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
        final_snap = await follow_operation(sessions, op_id, snaps.append, poll=0.01)
        await worker
    finally:
        await engine.dispose()
    views, final = [s.op for s in snaps], final_snap.op
    assert views[0].state == "queued"
    assert (final.state, final.done, final.total) == ("succeeded", 3, 3)
    assert views[-1] == final
    assert [v.done for v in views] == sorted(v.done for v in views)
    assert len(views) >= 3  # queued, some running steps, succeeded
    assert final.kind == "event.deploy"
    assert final.target == "event e1"  # no such event: its id stands in for the slug


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


STEPS = ["queued", "cloning", "configuring", "starting", "running"]


async def test_follow_shows_each_vm_of_a_deploy_move_until_it_runs(tmp_path: Path) -> None:
    from openvle_pvesim import run_simulator
    from tests.events.kit import DEBIAN, make_event, request, runtime_factory

    url = await make_db(tmp_path / "db.sqlite3")
    lines: list[str] = []
    snaps: list[Snapshot] = []
    async with (
        run_simulator(version="9.1", time_scale=0.05) as sim,
        runtime_factory(sim, url, None)() as runtime,
    ):
        event_id = await make_event(runtime, "moves", 3, (DEBIAN,))
        op = await request(runtime, "deploy", event_id)
        log = LineLog(lines.append)
        final = await follow_operation(runtime.sessions, op.id, log_and_keep(log, snaps), poll=0.02)
    assert (final.op.state, final.op.done, final.op.total) == ("succeeded", 3, 3)
    names = [f"moves-00{p}-debian-12-template" for p in (1, 2, 3)]
    assert [vm.name for vm in final.vms] == names
    assert all(vm.step == "running" and (vm.ipv4 or "").startswith("10.") for vm in final.vms)
    for name in names:  # each VM went through its steps in order, some seen on the way
        steps = [vm.step for s in snaps for vm in s.vms if vm.name == name]
        firsts = list(dict.fromkeys(steps))
        assert firsts == sorted(firsts, key=STEPS.index), firsts
        assert len(firsts) >= 2, firsts
    assert lines[0].startswith("event.deploy event moves: ")
    assert lines[-1].startswith("event.deploy event moves: succeeded, 3/3 VMs, ")
    assert sum(line.startswith("  moves-00") and "  running  10." in line for line in lines) == 3
    counts = [line.split(", ")[1] for line in lines if line.startswith("event.deploy")]
    assert (counts[0], counts[-1]) == ("0/3 VMs", "3/3 VMs")
    assert counts == sorted(counts)  # the count only goes up


def log_and_keep(log: LineLog, snaps: list[Snapshot]) -> Callable[[Snapshot], None]:
    def both(snap: Snapshot) -> None:
        snaps.append(snap)
        log(snap)

    return both


def board_text(snap: Snapshot, rows: int, width: int = 80) -> list[str]:
    import io

    from rich.console import Console

    from openvle_cli.progress import Board

    out = io.StringIO()
    board = Board(rows)
    board(snap)
    Console(file=out, width=width, force_terminal=False).print(board)
    return out.getvalue().splitlines()


def test_the_terminal_table_shows_the_counts_at_80_columns() -> None:
    from openvle_cli.watch import OperationView, VmLine

    long_target = "event " + "x" * 90
    op = OperationView("0" * 36, "event.deploy", long_target, "running", 1, 40, None)
    vms = tuple(
        VmLine(f"v{i}", f"lab1-{i:03}-a-template-with-a-rather-long-name", step, "10.20.0.1")
        for i, step in enumerate(["running", "failed", "cloning"] + ["waiting"] * 37)
    )
    lines = board_text(Snapshot(op, vms), rows=10)
    assert lines[0].startswith("running  1/40 VMs  0.0 s  event.deploy event xxx")
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) == 1 + 10
    shown = "".join(lines)
    assert "failed" in shown  # failed and busy VMs first when they do not all fit
    assert "cloning" in shown
    assert lines[-1].strip() == "... and 31 more"
    short = OperationView("0" * 36, "event.deploy", "event lab1", "running", 1, 3, None)
    assert board_text(Snapshot(short, vms[:3]), rows=10)[0] == (
        "running  1/3 VMs  0.0 s  event.deploy event lab1"
    )


async def test_an_archive_followed_after_it_ended_still_names_its_vms(tmp_path: Path) -> None:
    from openvle_pvesim import run_simulator
    from tests.events.kit import DEBIAN, make_event, run, runtime_factory

    url = await make_db(tmp_path / "db.sqlite3")
    async with (
        run_simulator(version="9.1", time_scale=0.01) as sim,
        runtime_factory(sim, url, None)() as runtime,
    ):
        event_id = await make_event(runtime, "gone", 2, (DEBIAN,))
        assert (await run(runtime, "deploy", event_id)).state == "succeeded"
        archive = await run(runtime, "archive", event_id)
        lines: list[str] = []
        final = await follow_operation(runtime.sessions, archive.id, LineLog(lines.append))
    assert [(vm.name, vm.step) for vm in final.vms] == [
        ("gone-001-debian-12-template", "deleted"),
        ("gone-002-debian-12-template", "deleted"),
    ]
    assert lines == [
        f"event.archive event gone: succeeded, 2/2 VMs, {final.op.seconds():.1f} s",
        "  gone-001-debian-12-template  deleted",
        "  gone-002-debian-12-template  deleted",
    ]
