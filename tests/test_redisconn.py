"""Redis connections from the settings (`openvle_core.redisconn`): a server, TLS and
Sentinel, for the redis-py client (locks, slots, doctor) and arq (the queue). The built
objects are checked field by field; then a real TLS Redis (`redis-server --tls-port`, a CA
of our own) and a real Sentinel (`redis-server --sentinel` over the test Redis) are used
through them by a client, arq and the sync lock."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import create_pool
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from openvle_core.redisconn import arq_settings, redis_client
from openvle_core.settings import ConfigError, load_settings
from openvle_core.settings import RedisSettings as Cfg
from openvle_core.sync.lock import lock_key, sync_lock
from tests.support.services import REDIS_HOST, free_port, require_service


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REDIS_"):
            monkeypatch.delenv(name)


def cfg(**values: Any) -> Cfg:
    return Cfg(_env_file=None, **values)  # type: ignore[call-arg]


def kwargs_of(client: Redis) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


# --- settings -> objects ---------------------------------------------------------------


def test_a_plain_url_gives_host_port_database_and_password() -> None:
    settings = cfg(url="redis://user:s3cret@redis.example:6390/4")
    client = redis_client(settings, timeout=2.5)
    kw = kwargs_of(client)
    assert (kw["host"], kw["port"], kw["db"]) == ("redis.example", 6390, 4)
    assert (kw["username"], kw["password"]) == ("user", "s3cret")
    assert kw["socket_timeout"] == kw["socket_connect_timeout"] == 2.5
    assert client.connection_pool.connection_class is not SSLConnection
    arq = arq_settings(settings)
    assert (arq.host, arq.port, arq.database) == ("redis.example", 6390, 4)
    assert (arq.username, arq.password, arq.ssl, arq.sentinel) == ("user", "s3cret", False, False)
    assert "s3cret" not in repr(settings)


def test_rediss_verifies_against_the_ca_file_and_the_host_name(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = cfg(url="rediss://:pw@redis.example:6380/1", tls_ca_file=str(ca))
    client = redis_client(settings)
    kw = kwargs_of(client)
    assert client.connection_pool.connection_class is SSLConnection
    assert (kw["ssl_ca_certs"], kw["ssl_cert_reqs"], kw["ssl_check_hostname"]) == (
        str(ca),
        "required",
        True,
    )
    arq = arq_settings(settings)
    assert (arq.ssl, arq.ssl_ca_certs, arq.ssl_cert_reqs, arq.ssl_check_hostname) == (
        True,
        str(ca),
        "required",
        True,
    )
    assert (arq.host, arq.port, arq.database, arq.password) == ("redis.example", 6380, 1, "pw")
    system = arq_settings(cfg(url="rediss://redis.example/0"))
    assert (system.ssl, system.ssl_ca_certs) == (True, None)  # the system's CAs


def test_a_unix_socket_url() -> None:
    settings = cfg(url="unix:///run/redis/redis.sock?db=2")
    kw = kwargs_of(redis_client(settings))
    assert (kw["path"], kw["db"]) == ("/run/redis/redis.sock", 2)
    arq = arq_settings(settings)
    assert (arq.unix_socket_path, arq.database) == ("/run/redis/redis.sock", 2)


def test_sentinels_find_the_master_with_the_urls_password_and_database() -> None:
    settings = cfg(
        url="rediss://:pw@ignored:1/3",
        sentinels=" s1.example:26379, [::1]:26380 ,",
        sentinel_master="openvle",
    )
    assert settings.sentinel_hosts == [("s1.example", 26379), ("::1", 26380)]
    client = redis_client(settings, timeout=1.0)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "openvle"
    assert [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in pool.sentinel_manager.sentinels
    ] == [("s1.example", 26379), ("::1", 26380)]
    kw = kwargs_of(client)
    assert (kw["db"], kw["password"], kw["socket_timeout"]) == (3, "pw", 1.0)
    assert "SSL" in pool.connection_class.__name__  # rediss:// -> TLS to the master
    arq = arq_settings(settings)
    assert (arq.sentinel, arq.sentinel_master, arq.host) == (
        True,
        "openvle",
        [("s1.example", 26379), ("::1", 26380)],
    )
    assert (arq.database, arq.password, arq.ssl) == (3, "pw", True)


@pytest.mark.parametrize(
    ("env", "variable", "message"),
    [
        ({"REDIS_SENTINELS": "s1:26379"}, "REDIS_SENTINELS", "needs REDIS_URL too"),
        (
            {"REDIS_URL": "redis://r/0", "REDIS_SENTINELS": "s1"},
            "REDIS_SENTINELS",
            "'s1' is not host:port",
        ),
        (
            {"REDIS_URL": "unix:///r.sock", "REDIS_SENTINELS": "s1:26379"},
            "REDIS_SENTINELS",
            "not unix://",
        ),
        (
            {"REDIS_URL": "redis://r/0", "REDIS_TLS_CA_FILE": "CA"},
            "REDIS_TLS_CA_FILE",
            "applies to a rediss:// REDIS_URL only",
        ),
        (
            {"REDIS_URL": "rediss://r/0", "REDIS_SENTINELS": "s1:1", "REDIS_TLS_CA_FILE": "CA"},
            "REDIS_TLS_CA_FILE",
            "cannot be combined with REDIS_SENTINELS",
        ),
        (
            {"REDIS_URL": "rediss://r/0", "REDIS_TLS_CA_FILE": "missing.pem"},
            "REDIS_TLS_CA_FILE",
            "is not a file",
        ),
    ],
)
def test_bad_redis_settings_are_named(
    env: dict[str, str],
    variable: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    (tmp_path / "CA").write_text("x")
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert any(name == variable and message in text for name, text in caught.value.problems), (
        caught.value.problems
    )


# --- real servers -----------------------------------------------------------------------


def _start(args: list[str], port: int, workdir: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    if exe is None:
        require_service("redis", "redis-server is not installed")
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([str(exe), *args], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text())
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not listen on {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A Redis of our own speaking TLS only, its certificate signed by a CA of our own."""
    if shutil.which("openssl") is None:
        require_service("redis", "openssl is not installed (test certificates)")
    work = tmp_path_factory.mktemp("tlsredis")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=OpenVLE test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=work)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=work)  # fmt: skip
    (work / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
             cwd=work)  # fmt: skip
    port = free_port()
    proc = _start(
        ["--port", "0", "--tls-port", str(port), "--tls-cert-file", "server.pem",
         "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem",
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"],
        port,
        work,
    )  # fmt: skip
    try:
        yield port, work / "ca.pem"
    finally:
        _stop(proc)


async def test_a_real_tls_redis_through_the_factory(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    settings = load_settings(
        env_file=None,
        redis={"url": f"rediss://localhost:{port}/2", "tls_ca_file": str(ca)},
    )
    client = redis_client(settings.redis, timeout=5)
    try:
        assert await client.ping() is True
        async with sync_lock(client, settings) as held:
            assert held is True
            assert await client.exists(lock_key(settings)) == 1
        assert await client.exists(lock_key(settings)) == 0
    finally:
        await client.aclose()
    pool = await create_pool(arq_settings(settings.redis))
    try:
        job = await pool.enqueue_job("run_operation_job", "op-1", _job_id="tls-job")
        assert job is not None
        assert await pool.zcard("arq:queue") == 1
    finally:
        await pool.aclose()
    plain = load_settings(env_file=None, redis={"url": f"rediss://localhost:{port}/2"})
    untrusted = redis_client(plain.redis, timeout=5)
    try:
        with pytest.raises(RedisConnectionError, match="certificate verify failed"):
            await untrusted.ping()  # the system's CAs do not know ours
    finally:
        await untrusted.aclose()


@pytest.fixture(scope="module")
def sentinel_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Sentinel of our own watching the test Redis as master `openvle-test` (it never
    fails over: there is no replica to promote)."""
    host, _, port = REDIS_HOST.partition(":")
    work = tmp_path_factory.mktemp("sentinel")
    listen = free_port()
    (work / "sentinel.conf").write_text(
        f"port {listen}\nbind 127.0.0.1\ndir {work}\n"
        f"sentinel monitor openvle-test {host} {port or 6379} 1\n"
        "sentinel down-after-milliseconds openvle-test 60000\n"
    )
    proc = _start([str(work / "sentinel.conf"), "--sentinel"], listen, work)
    try:
        yield listen
    finally:
        _stop(proc)


async def test_a_real_sentinel_through_the_factory(sentinel_port: int, redis_url: str) -> None:
    database = int(redis_url.rsplit("/", 1)[1])
    settings = load_settings(
        env_file=None,
        redis={
            "url": f"redis://ignored.invalid:1/{database}",  # the host comes from Sentinel
            "sentinels": f"127.0.0.1:{sentinel_port}",
            "sentinel_master": "openvle-test",
        },
    )
    direct = Redis.from_url(redis_url)
    client = redis_client(settings.redis, timeout=5)
    try:
        await client.set("openvle:test:via-sentinel", "yes")
        assert await direct.get("openvle:test:via-sentinel") == b"yes"  # same server and db
        async with sync_lock(client, settings) as held:
            assert held is True
            assert await direct.exists(lock_key(settings)) == 1
            async with sync_lock(direct, settings) as second:
                assert second is False  # one lock, whichever way it is reached
        pool = await create_pool(arq_settings(settings.redis))
        try:
            assert await pool.enqueue_job("run_operation_job", "op-1", _job_id="s-job")
            assert await direct.zscore("arq:queue", "s-job") is not None
        finally:
            await pool.aclose()
    finally:
        await direct.delete("openvle:test:via-sentinel", "arq:queue", "arq:job:s-job")
        await direct.aclose()
        await client.aclose()
