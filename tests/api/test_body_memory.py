"""Oversized uploads do not grow the API's memory: `openvle api` in a subprocess takes a
few parallel 64 MiB uploads (no token with Content-Length, no token chunked, an admin
token chunked) and its peak resident set (VmHWM from /proc) stays within a bound."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.slow
MiB = 1 << 20
UPLOAD = 64 * MiB
PIECE = 256 * 1024
ALLOWED_GROWTH = 24 * MiB  # the limit (1 MiB) per upload plus slack; unlimited: >400 MiB


@contextmanager
def api_process(tmp_path: Path) -> Iterator[tuple[int, int, str]]:
    """`openvle api` on a free port: (pid, port, admin token)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "WORKER_PVE_PERIODIC_INTERVAL": "3600",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    script = str(Path(sys.executable).with_name("openvle"))
    run = {"cwd": tmp_path, "env": env, "check": True, "capture_output": True, "text": True}
    subprocess.run([script, "migrate"], **run)  # type: ignore[call-overload]
    made = subprocess.run([script, "token", "create", "mem", "--scope", "admin"], **run)  # type: ignore[call-overload]
    token = made.stdout.strip().splitlines()[-1]
    args = [script, "api", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):  # bounded by the test timeout, not by wall-clock asserts
                with suppress(httpx.TransportError):
                    client.get("/health/live")
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the API never answered")
        yield proc.pid, port, token
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


async def upload(port: int, token: str | None, chunked: bool) -> int | None:
    """POST /api/v1/events with a 64 MiB body, as curl sends one (`Expect: 100-continue`:
    the body follows only if the server asks for it). The final status, or None when
    the server cut the connection mid-body before its answer could be read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = ["POST /api/v1/events HTTP/1.1", "Host: api", "Content-Type: application/json"]
    head += [f"Authorization: Bearer {token}"] if token else []
    head += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {UPLOAD}"]
    writer.write(("\r\n".join([*head, "Expect: 100-continue"]) + "\r\n\r\n").encode())
    try:
        line = await reader.readline()
        if line.startswith(b"HTTP/1.1 100"):
            await reader.readline()  # the blank line ending the interim response
            line = await _send_body(reader, writer, chunked)
    except (ConnectionError, OSError):
        line = b""
    finally:
        writer.close()
        with suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1") else None


async def _send_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunked: bool
) -> bytes:
    """Stream the body while watching for an early answer; the answer's status line."""
    answer = asyncio.create_task(reader.readline())
    piece = b"[" + b" " * (PIECE - 1)
    frame = f"{PIECE:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    try:
        for _ in range(UPLOAD // PIECE):
            if answer.done():
                break
            writer.write(frame)
            await writer.drain()
        if chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
        return await answer
    except (ConnectionError, OSError):
        done = answer.done() and answer.exception() is None
        return answer.result() if done else b""
    finally:
        if not answer.done():
            answer.cancel()


async def parallel_uploads(port: int, token: str) -> list[int | None]:
    cases = [(None, False), (None, True), (token, True)] * 2
    return list(await asyncio.gather(*(upload(port, t, c) for t, c in cases)))


def warm_up(port: int, token: str) -> None:
    """Small requests down the same paths, so lazy imports and first allocations are done."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            client.post("/api/v1/events", json={"slug": "x"}, headers=headers)
            client.post("/api/v1/events", content=b"[" * 4 * MiB, headers=headers)


def test_parallel_oversized_uploads_keep_memory_flat(tmp_path: Path) -> None:
    with api_process(tmp_path) as (pid, port, token):
        warm_up(port, token)
        before = peak_rss(pid)
        statuses = asyncio.run(parallel_uploads(port, token))
        grown = peak_rss(pid) - before
    assert grown < ALLOWED_GROWTH, f"peak RSS grew by {grown / MiB:.1f} MiB"
    # refused from the headers alone: the body was never asked for
    assert statuses[:2] == statuses[3:5] == [413, 401]
    # refused mid-stream at the limit (the answer may be lost to the reset that follows)
    assert {statuses[2], statuses[5]} <= {413, None}
