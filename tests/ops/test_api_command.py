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
from tests.support.monitoring import API_METRICS, exposed_names, samples
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


def test_two_workers_scrape_the_sum_of_both_processes(tmp_path: Path, redis_url: str) -> None:
    """`openvle api --workers 2`: whichever process answers a scrape, it reports the
    requests of both (prometheus_client's multiprocess mode, in a temporary directory of
    the command's own that is gone after it exits)."""
    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": redis_url,
        "TMPDIR": str(temp),
        "PVE_TOKEN_VALUE": "a-secret",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = str(Path(sys.executable).with_name("openvle"))
    subprocess.run([script, "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True)
    args = [script, "api", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    live = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):  # bounded by the test timeout, not by wall-clock asserts
                try:
                    client.get("/health/live")
                    live += 1
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        (directory,) = temp.glob("openvle-metrics-*")
        served: dict[str, float] = {}
        while len([n for n in served.values() if n]) < 2 and live < 2000:
            for _ in range(20):  # a connection each: both processes accept
                httpx.get(f"http://127.0.0.1:{port}/health/live", headers={"Connection": "close"})
                live += 1
            served = live_requests_by_process(directory)
        assert len([n for n in served.values() if n]) == 2, served  # both answered some
        for _ in range(100):  # a request is counted as its response ends: maybe just after
            if sum(served.values()) == live:
                break
            time.sleep(0.05)
            served = live_requests_by_process(directory)
        assert sum(served.values()) == live
        scrapes = []
        for _ in range(6):
            reply = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Connection": "close"})
            assert reply.status_code == 200
            scrapes.append(reply.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert list(temp.iterdir()) == []  # the command removed its directory
    for earlier, text in enumerate(scrapes):
        assert route_count(text, "/health/live") == live  # the sum, every time
        assert route_count(text, "/metrics") == earlier  # each scrape counted once, anywhere
    assert exposed_names(scrapes[-1]) >= API_METRICS


def route_count(text: str, route: str) -> float:
    return sum(
        value
        for labels, value in samples(text, "openvle_http_requests_total")
        if labels["route"] == route
    )


def live_requests_by_process(directory: Path) -> dict[str, float]:
    """/health/live requests per process, read from each process's own counter file."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in directory.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        counts[path.name] = sum(
            s.value
            for m in metrics
            for s in m.samples
            if s.name == "openvle_http_requests_total" and s.labels["route"] == "/health/live"
        )
    return counts


def test_an_operators_multiprocess_directory_is_emptied_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROMETHEUS_MULTIPROC_DIR set by the operator: used, and an earlier run's files are
    removed before the processes start (their counts would be summed in); kept after."""
    from openvle_cli.serve import multiprocess_dir

    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_4242.db").write_bytes(b"from an earlier run")
    (given / "notes.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    with multiprocess_dir() as path:
        assert path == given
        assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(given)
    assert given.is_dir()
