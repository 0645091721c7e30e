"""Outages of the API's dependencies, cut by a TCP proxy the test owns (the machine's
MariaDB and Redis keep running for everyone else).

While the database is cut, every request (reads, writes, authentication) answers 503
problem+json with Retry-After, the log has one line for the outage (no traceback per
request) and the metric counts the refusals; once it is back the same app answers again,
with no restart. While Redis is cut, a request that would enqueue an operation answers
503 the same way and leaves nothing in the database; once it is back it is queued.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from openvle_core.availability import DATABASE, REDIS
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation, Vm
from openvle_core.metrics import REGISTRY
from openvle_pvesim import Simulator, run_simulator
from tests.api.kit import Api, Backend, event_body, open_api, seed, template
from tests.support.proxy import TcpProxy, mariadb_behind_proxy, split_host, tcp_proxy
from tests.support.services import REDIS_HOST

pytestmark = [pytest.mark.redis]
AVAILABILITY_LOG = "openvle_core.availability"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(version="9.1", tls=True, time_scale=0.0) as simulator:
        yield simulator


def refusals(dependency: str) -> float:
    value = REGISTRY.get_sample_value(
        "openvle_unavailable_responses_total", {"dependency": dependency}
    )
    return value or 0.0


def assert_unavailable(got: httpx.Response, code: str) -> None:
    assert got.status_code == 503, got.text
    assert got.headers["content-type"] == "application/problem+json"
    assert int(got.headers["retry-after"]) > 0
    assert got.json()["type"] == f"urn:openvle:problem:{code}"


def outage_lines(caplog: pytest.LogCaptureFixture, name: str) -> tuple[int, int]:
    """(lines saying `name` went away, lines saying it is back) in the captured log."""
    mine = [r.getMessage() for r in caplog.records if r.name == AVAILABILITY_LOG]
    down = sum(m.startswith(f"{name} unavailable") for m in mine)
    back = sum(m.startswith(f"{name} available again") for m in mine)
    return down, back


async def count(api: Api, model: Any) -> int:
    async with api.runtime.sessions() as session:
        return int((await session.scalar(select(func.count()).select_from(model))) or 0)


async def test_database_cut_answers_503_once_logged_and_recovers_without_restart(
    sim: Simulator, mariadb_database_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with mariadb_behind_proxy(mariadb_database_factory, "outage") as (proxy, url):
        backend = Backend("mariadb-through-proxy", url)
        async with open_api(backend, sim) as api:
            tpl = template(9600, "tpl-9600")
            await seed(api.runtime.sessions, tpl)
            assert (await api.client.get("/api/v1/vms", headers=api.auth("read"))).status_code
            before = refusals("database")
            caplog.clear()
            caplog.set_level(logging.INFO, logger=AVAILABILITY_LOG)

            await proxy.pause()
            answers = [
                await api.client.get("/api/v1/vms", headers=api.auth("read")),
                await api.client.get("/api/v1/events", headers=api.auth("read")),
                await api.client.get(f"/api/v1/templates/{tpl.id}", headers=api.auth("read")),
                await api.client.post(
                    "/api/v1/events", json=event_body([tpl.id], "cut"), headers=api.auth()
                ),
                await api.client.post(
                    "/api/v1/vms", json={"template_id": tpl.id, "name": "cut"}, headers=api.auth()
                ),
            ]
            for got in answers:
                assert_unavailable(got, "database_unavailable")
            assert refusals("database") - before == len(answers)
            assert outage_lines(caplog, "database") == (1, 0)
            assert [r.getMessage() for r in caplog.records if r.exc_info] == []  # no traceback
            assert not DATABASE.available

            await proxy.resume()
            got = await api.client.get("/api/v1/vms", headers=api.auth("read"))
            assert got.status_code == 200, got.text
            made = await api.client.post(
                "/api/v1/events", json=event_body([tpl.id], "after"), headers=api.auth()
            )
            assert made.status_code == 201, made.text
            assert outage_lines(caplog, "database") == (1, 1)
            assert DATABASE.available
            listed = await api.client.get("/api/v1/events", headers=api.auth("read"))
            slugs = [e["slug"] for e in listed.json()["items"]]
            assert slugs == ["after"]  # the refused POSTs wrote nothing
            assert await count(api, Vm) == 0


async def test_redis_cut_refuses_an_enqueueing_request_with_nothing_written(
    sim: Simulator, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'openvle.sqlite3'}"
    await upgrade_to_head(database)
    index = make_url(redis_url).database
    REDIS.restored()
    async with tcp_proxy(*split_host(REDIS_HOST)) as proxy:
        backend = Backend(
            "redis-through-proxy", database, f"redis://127.0.0.1:{proxy.port}/{index}"
        )
        async with open_api(backend, sim) as api:
            tpl = template(9601, "tpl-9601")
            await seed(api.runtime.sessions, tpl)
            before = refusals("redis")
            caplog.clear()
            caplog.set_level(logging.INFO, logger=AVAILABILITY_LOG)

            await proxy.pause()
            for name in ("cut-1", "cut-2", "cut-3"):
                got = await api.client.post(
                    "/api/v1/vms", json={"template_id": tpl.id, "name": name}, headers=api.auth()
                )
                assert_unavailable(got, "queue_unavailable")
            assert refusals("redis") - before == 3
            assert outage_lines(caplog, "redis") == (1, 0)
            assert [r.getMessage() for r in caplog.records if r.exc_info] == []
            assert (await count(api, Vm), await count(api, Operation)) == (0, 0)  # nothing
            reads = await api.client.get("/api/v1/vms", headers=api.auth("read"))
            assert reads.status_code == 200  # reading needs no queue

            await proxy.resume()
            got = await api.client.post(
                "/api/v1/vms", json={"template_id": tpl.id, "name": "after"}, headers=api.auth()
            )
            assert got.status_code == 202, got.text
            assert outage_lines(caplog, "redis") == (1, 1)
            op_id = got.json()["id"]
            assert (await count(api, Vm), await count(api, Operation)) == (1, 1)
            await assert_queued_once(redis_url, op_id)


async def assert_queued_once(redis_url: str, op_id: str) -> None:
    """The operation has exactly one arq job in Redis (then it is removed again)."""
    client = Redis.from_url(redis_url)
    try:
        jobs = [j.decode() for j in await client.zrange("arq:queue", 0, -1)]
        mine = [j for j in jobs if j.startswith(f"op:{op_id}:")]
        assert len(mine) == 1
        await client.zrem("arq:queue", *mine)
        await client.delete(*(f"arq:job:{j}" for j in mine))
    finally:
        await client.aclose()


async def test_the_proxy_refuses_while_paused_and_relays_after() -> None:
    """The tool itself: a paused proxy refuses connections and resets open ones."""
    proxy = TcpProxy(*split_host(REDIS_HOST))
    await proxy.start()
    client = Redis(host="127.0.0.1", port=proxy.port, socket_connect_timeout=1)
    try:
        try:
            assert await client.ping()
        except Exception as exc:  # no Redis on this machine
            pytest.skip(f"redis unavailable: {exc}")
        await proxy.pause()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        await proxy.resume()
        assert await client.ping()
        assert proxy.accepted >= 2
    finally:
        await client.aclose()
        await proxy.close()
