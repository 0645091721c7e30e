"""Shared test configuration.

External services (MariaDB, Redis, the MongoDB-wire server) are optional outside CI:
a test that needs an absent one skips with a reason, unless
OPENVLE_TEST_REQUIRE_SERVICES=1, in which case it fails. Use `require_service()`.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.support.services import MARIADB_HOST, REDIS_HOST, free_port, require_service

# --- external services: one fresh database / Redis db / MongoDB-wire server per run -----


def _mariadb_url(database: str) -> str:
    return f"mysql+asyncmy://{MARIADB_HOST}/{database}?charset=utf8mb4"


async def _mariadb_admin(sql: str) -> None:
    from sqlalchemy import text

    from openvle_core.db.session import create_engine

    engine = create_engine(_mariadb_url(""))
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def mariadb_database_factory() -> AsyncIterator[Any]:
    """Creates uniquely named MariaDB databases and drops all of them at the end."""
    created: list[str] = []
    try:
        await _mariadb_admin("SELECT 1")
    except Exception as exc:  # any connect failure means "no MariaDB here"
        error: str | None = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    else:
        error = None

    async def create(label: str = "t") -> str:
        if error is not None:
            require_service("mariadb", error)
        name = f"openvle_{label}_{secrets.token_hex(4)}"
        await _mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        created.append(name)
        return _mariadb_url(name)

    yield create
    for name in created:
        await _mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")


@pytest_asyncio.fixture(scope="session")
async def mariadb_url(mariadb_database_factory: Any) -> str:
    """A fresh, empty MariaDB database for this test run (dropped at the end)."""
    return str(await mariadb_database_factory("run"))


@pytest_asyncio.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    """A Redis database index of our own for this run, claimed with SET NX and flushed."""
    from redis.asyncio import Redis

    token = secrets.token_hex(8)
    for index in range(15, 0, -1):
        client = Redis.from_url(f"redis://{REDIS_HOST}/{index}")
        try:
            claimed = await client.set("openvle:test:claim", token, nx=True, ex=6 * 3600)
        except Exception as exc:  # connect failure: no Redis here
            await client.aclose()
            require_service("redis", f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        if claimed and await client.dbsize() == 1:
            try:
                yield f"redis://{REDIS_HOST}/{index}"
            finally:
                await client.flushdb()
                await client.aclose()
            return
        if claimed:
            await client.delete("openvle:test:claim")
        await client.aclose()
    require_service("redis", "no free Redis database index (1-15)")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nx-27017 exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nx-27017 did not listen on {port} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An nx-27017 (MongoDB wire protocol on SQLite) server of our own on a free port."""
    exe = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    if not Path(exe).exists():
        require_service("mongodb", "the nx-27017 executable is not installed")
    workdir = tmp_path_factory.mktemp("nx27017")
    port = free_port()
    args = [exe, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(workdir / "data")]
    args += ["--pid-file", str(workdir / "nx.pid"), "--log-file", str(workdir / "nx.log")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_for_port(port, proc)
        except RuntimeError as exc:
            require_service("mongodb", str(exc))
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- SQL databases, migrated, for repository tests on both backends --------------------


@pytest_asyncio.fixture(scope="session", params=["sqlite", "mariadb"])
async def db_engine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mariadb_database_factory: Any,
) -> AsyncIterator[AsyncEngine]:
    """A migrated engine per backend: SQLite in a temp file, MariaDB in the run's database."""
    from openvle_core.db.migrate import upgrade_to_head
    from openvle_core.db.session import create_engine

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'openvle.sqlite3'}"
    else:
        url = await mariadb_database_factory("repo")
    await upgrade_to_head(url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def db_session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is rolled back after the test.

    Code under test may commit: with `create_savepoint` its commits end savepoints.
    """
    async with db_engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()
