"""The `openvle` command in-process: migrate, token create|list|revoke, sync, errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from openvle_cli.main import main
from openvle_core.db.session import create_engine, session_factory
from openvle_core.nodes.repository import NodeRepository
from openvle_core.tokens.service import authenticate
from openvle_pvesim import start_in_thread
from tests.support.services import free_port


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A working directory without .env and DATABASE_URL on a fresh SQLite file."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def _active(url: str, plain: str) -> bool:
    async def check() -> bool:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return await authenticate(session, plain) is not None
        finally:
            await engine.dispose()

    return asyncio.run(check())


def test_token_lifecycle(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert "database at revision" in capsys.readouterr().out
    assert main(["token", "create", "frontend", "--scope", "operate"]) == 0
    out = capsys.readouterr().out.splitlines()
    token_id = out[0].split()[2]
    plain = out[1]
    assert plain.startswith("ovl_")
    assert _active(env, plain)
    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert token_id in listing
    assert "operate" in listing
    assert plain not in listing
    assert plain[:12] + "..." in listing
    assert main(["token", "revoke", token_id]) == 0
    assert not _active(env, plain)
    assert _list_lines(capsys)[-1].split()[-3] == "revoked"


def _list_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    main(["token", "list"])
    return capsys.readouterr().out.strip().splitlines()[1:]


def test_errors_exit_nonzero(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate"]) == 0
    assert main(["token", "revoke", "nope"]) == 1
    assert "API token nope not found" in capsys.readouterr().err
    assert main(["token", "create", "x", "--scope", "root"]) == 2
    monkeypatch.setenv("PVE_HOSTNAME", "no-port")
    assert main(["token", "list"]) == 2
    assert "PVE_HOSTNAME: must be host:port" in capsys.readouterr().err


def test_version_without_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("openvle ")


def test_sync_runs_one_sync(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    with start_in_thread(version="9.1", tls=True) as sim:
        monkeypatch.setenv("PVE_HOSTNAME", sim.hostname)
        monkeypatch.setenv("PVE_USER", "openvle@pve")
        monkeypatch.setenv("PVE_TOKEN_NAME", "ci")
        monkeypatch.setenv("PVE_TOKEN_VALUE", sim.tokens["openvle@pve!ci"])
        monkeypatch.setenv("PVE_VERIFY_SSL", str(sim.ca_file))
        status = main(["sync"])
        out = capsys.readouterr().out
        as_json = main(["sync", "--json"])
        counts = json.loads(capsys.readouterr().out)
    assert status == 0, out
    lines = out.strip().splitlines()
    assert lines[0] == "sync succeeded"
    assert "  nodes=3" in lines
    assert any(line.startswith("  pool_guests=") for line in lines)
    assert as_json == 0
    assert counts["state"] == "succeeded"
    assert counts["error"] is None
    assert counts["nodes"] == 3
    assert counts["resources"] > counts["pool_guests"] > 0
    assert _node_names(env) == ["pve1", "pve2", "pve3"]


def _node_names(url: str) -> list[str]:
    async def names() -> list[str]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return [n.name for n in await NodeRepository(session).all()]
        finally:
            await engine.dispose()

    return asyncio.run(names())


def test_api_serves_until_terminated(env: str, tmp_path: Path) -> None:
    assert main(["migrate"]) == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "openvle_cli.main", "api", "--port", str(port)],
        env={**os.environ, "WORKER_PVE_PERIODIC_INTERVAL": "3600"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        body = _wait_for_json(f"http://127.0.0.1:{port}/health/live", proc)
        assert body == {"status": "ok"}
        anonymous = httpx.get(f"http://127.0.0.1:{port}/api/v1/vms", timeout=5)
        assert anonymous.status_code == 401
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM as its exit status
    assert proc.returncode in {0, -signal.SIGTERM}, stderr.decode()
    assert "Application shutdown complete." in stderr.decode()


def _wait_for_json(url: str, proc: subprocess.Popen[bytes]) -> object:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"openvle api exited with {proc.returncode}")
        try:
            return httpx.get(url, timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("openvle api did not answer")


def test_token_names_are_checked(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert main(["token", "create", " "]) == 1
    assert "a token name is 1-64 characters" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["token", "create", "x"],
        ["token", "revoke", "x"],
        ["follow", "x"],
        ["sync"],
        ["plan", "x"],
    ],
)
def test_no_database_is_one_line_and_creates_nothing(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the default: ./openvle.sqlite3
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "database not ready: the SQLite file openvle.sqlite3 does not exist (DATABASE_URL)."
        " Fix: openvle migrate"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_database_never_migrated_is_named_so(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cli.sqlite3").touch()  # an empty SQLite database: no tables
    assert main(["token", "list"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("database not ready: no tables: it was never migrated, newest ")
    assert err[0].endswith(". Fix: openvle migrate")
    assert main(["migrate"]) == 0
    assert main(["token", "list"]) == 0


@pytest.mark.parametrize("command", [["sync"], ["doctor"], ["token", "list"], ["demo"], []])
def test_help_fits_80_columns_and_flags_take_no_value(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    if command in (["sync"], ["doctor"]):
        assert any(line.split()[:1] == ["--json"] for line in out.splitlines())


def test_token_list_columns_line_up(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    for name in ("a", "a-much-longer-name"):
        assert main(["token", "create", name]) == 0
    capsys.readouterr()
    assert main(["token", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "\t" not in "".join(lines)
    for column in ("name", "prefix", "scope", "created", "last used", "state"):
        start = lines[0].index(column)
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[1:])


def test_sync_while_one_is_in_flight_waits_for_it(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-shot sync arriving while another holds the sync (the worker's periodic one)
    reports that one's outcome instead of failing on TargetBusy."""
    from openvle_cli import sync as cli_sync
    from openvle_core.db.enums import OperationState
    from openvle_core.db.session import transaction
    from openvle_core.operations.queries import get_operation
    from openvle_core.settings import load_settings
    from openvle_core.sync.service import request_sync

    assert main(["migrate"]) == 0
    monkeypatch.setattr(cli_sync, "POLL_S", 0.05)

    async def scenario() -> tuple[cli_sync.SyncOutcome, cli_sync.SyncOutcome, str]:
        engine = create_engine(env)
        sessions = session_factory(engine)
        try:
            async with transaction(sessions) as session:
                holder = (await request_sync(session)).id
            settings = load_settings()
            timed_out = await cli_sync.sync_once(settings, wait_s=0.2)
            waiting = asyncio.create_task(cli_sync.sync_once(settings, wait_s=30))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            async with transaction(sessions) as session:
                op = await get_operation(session, holder)
                op.state = OperationState.SUCCEEDED
                op.result = {"nodes": 3}
            return timed_out, await waiting, holder
        finally:
            await engine.dispose()

    timed_out, joined, holder = asyncio.run(scenario())
    assert timed_out.joined == holder
    assert timed_out.error is not None
    assert "did not end within" in timed_out.error
    assert joined == cli_sync.SyncOutcome("succeeded", None, {"nodes": 3}, holder)
