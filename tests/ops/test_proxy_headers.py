"""`openvle api --proxy-headers --forwarded-allow-ips`: a trusted proxy's X-Forwarded-Proto
and -For take effect (absolute redirect URLs, the client in the access log); others not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.slow
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[tuple[httpx.Client, list[str]]]:
    """`openvle api` on a free port; yields a client and, after exit, its stderr lines."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "LOG_FORMAT": "json",
        "WORKER_PVE_PERIODIC_INTERVAL": "3600",
    }
    env.pop("REDIS_URL", None)
    script = str(Path(sys.executable).with_name("openvle"))
    subprocess.run([script, "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True)
    args = [script, "api", "--host", "127.0.0.1", "--port", str(port), *options]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    log: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):  # bounded by the test timeout, not by wall-clock asserts
                try:
                    client.get("/health/live")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the API never answered")
            yield client, log
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        log.extend(err.splitlines())


def _access_lines(log: list[str]) -> list[str]:
    entries = [json.loads(line) for line in log if line.startswith("{")]
    return [e["message"] for e in entries if e["logger"] == "uvicorn.access"]


def test_trusted_proxy_headers_set_scheme_and_client(tmp_path: Path) -> None:
    options = ("--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    with serving(tmp_path, *options) as (client, log):
        # a real route's trailing-slash redirect is built from request.url
        reply = client.get("/api/v1/vms/", headers=FORWARDED, follow_redirects=False)
    assert reply.status_code == 307
    assert reply.headers["location"].startswith("https://127.0.0.1:")
    assert any("203.0.113.7" in line for line in _access_lines(log))


def test_untrusted_proxy_headers_are_ignored(tmp_path: Path) -> None:
    options = ("--proxy-headers", "--forwarded-allow-ips", "192.0.2.1")
    with serving(tmp_path, *options) as (client, log):
        reply = client.get("/api/v1/vms/", headers=FORWARDED, follow_redirects=False)
    assert reply.status_code == 307
    assert reply.headers["location"].startswith("http://127.0.0.1:")
    access = _access_lines(log)
    assert any("/api/v1/vms/" in line for line in access)
    assert not any("203.0.113.7" in line for line in access)
