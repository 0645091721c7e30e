"""`openvle api` production options: several uvicorn workers on Redis, JSON logs through
our handler (uvicorn's own included), and a clear refusal of workers without Redis."""

from __future__ import annotations

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
from tests.support.services import free_port

pytestmark = pytest.mark.slow


def test_workers_need_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["api", "--workers", "2"]) == 2
    assert "needs REDIS_URL" in capsys.readouterr().err


def test_two_workers_serve_with_json_logs(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "json",
        "API_WORKERS": "2",
        "PVE_TOKEN_VALUE": "a-secret-never-logged",
    }
    script = str(Path(sys.executable).with_name("openvle"))
    subprocess.run([script, "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True)
    args = [script, "api", "--port", str(port)]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):  # bounded by the test timeout, not by wall-clock asserts
                try:
                    reply = client.get("/health/live")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the API never answered")
        assert reply.json() == {"status": "ok"}
        early = _until_seen(proc, workers=2)  # lines may come after the first answer
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0
    err = early + rest
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["logger"] == "uvicorn.access" and "/health/live" in e["message"] for e in lines)
    started = [e for e in lines if e["message"].startswith("Started server process")]
    assert len(started) == 2
    assert "a-secret-never-logged" not in err


def _until_seen(proc: subprocess.Popen[str], *, workers: int) -> str:
    """stderr up to the `workers`-th "Started server process" line and the access line of
    /health/live (bounded by the test timeout; a worker that never starts fails there)."""
    assert proc.stderr is not None
    seen: list[str] = []
    while sum("Started server process" in line for line in seen) < workers or not any(
        "/health/live" in line for line in seen
    ):
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
    return "".join(seen)
