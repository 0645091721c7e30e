"""/health/ready: the queue or the snapshot store failing answers 503 naming it."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from openvle_api.app import create_app
from openvle_core.queue import ArqQueue
from openvle_core.runtime import Runtime
from openvle_core.snapshot.mongo import MongoSnapshotStore
from tests.api.kit import Api
from tests.support.services import free_port, require_service


async def _ready(api: Api, runtime: Runtime) -> httpx.Response:
    app = create_app(api.settings, runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get("/health/ready")


def _assert_fails_on(got: httpx.Response, component: str) -> dict[str, Any]:
    assert got.status_code == 503
    body: dict[str, Any] = got.json()
    assert body["ready"] is False
    failed = {name for name, check in body["checks"].items() if not check["ok"]}
    assert failed == {component}
    assert component in body["checks"][component]["detail"]
    return body


async def test_unreachable_redis_fails_readiness_naming_the_queue(api: Api) -> None:
    port = free_port()  # nothing listens here
    redis = ArqRedis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    try:
        got = await _ready(api, dataclasses.replace(api.runtime, queue=ArqQueue(redis)))
    finally:
        await redis.aclose()
    body = _assert_fails_on(got, "queue")
    assert str(port) not in got.text  # no address of a dependency on an open endpoint
    assert body["proxmox"]["ok"] is True


@pytest.fixture
def own_mongodb(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An nx-27017 server this test may stop."""
    exe = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    if not Path(exe).exists():
        require_service("mongodb", "the nx-27017 executable is not installed")
    log = tmp_path / "nx-27017.log"
    for _ in range(3):  # a free port can be taken by another process before nx binds it
        port = free_port()
        args = [exe, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)]
        args += ["--pid-file", str(tmp_path / "nx.pid")]  # the default /tmp one is shared
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        if _listening(proc, port, deadline=time.monotonic() + 60):
            break
        proc.kill()
        proc.wait()
    else:
        require_service("mongodb", f"nx-27017 did not start: {log.read_text()[-500:]}")
    try:
        yield f"mongodb://127.0.0.1:{port}/", proc
    finally:
        proc.kill()
        proc.wait()


def _listening(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    while proc.poll() is None and time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture
async def mongo_store(
    own_mongodb: tuple[str, subprocess.Popen[bytes]],
) -> AsyncIterator[MongoSnapshotStore]:
    store = MongoSnapshotStore.from_url(own_mongodb[0], "readiness")
    yield store
    await store.close()


async def test_stopped_mongodb_fails_readiness_naming_the_snapshot_store(
    api: Api, own_mongodb: tuple[str, subprocess.Popen[bytes]], mongo_store: MongoSnapshotStore
) -> None:
    runtime = dataclasses.replace(api.runtime, snapshot=mongo_store)
    assert (await _ready(api, runtime)).status_code == 200
    own_mongodb[1].terminate()
    own_mongodb[1].wait(timeout=10)
    got = await _ready(api, runtime)
    _assert_fails_on(got, "snapshot")
    assert "127.0.0.1" not in got.text
