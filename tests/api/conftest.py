"""API fixtures: the app over ASGI on both setups, with a token per scope.

- `backend` ("embedded": SQLite, in-process queue, snapshot in SQL; "services":
  MariaDB, Redis/arq, nx-27017), one simulator (PVE 9.1, TLS) per module.
- `api`: an `Api` with `client` (httpx on the ASGI app), `runtime`, and `tokens`
  (plain bearer tokens by scope).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_pvesim import Simulator, run_simulator
from tests.api.kit import Api, Backend, open_api


@pytest.fixture(scope="module", params=["embedded", "services"])
def backend_kind(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "embedded":
        return {"name": "embedded"}
    return {
        "name": "services",
        "factory": request.getfixturevalue("mariadb_database_factory"),
        "redis_url": request.getfixturevalue("redis_url"),
        "mongodb_url": request.getfixturevalue("mongodb_url"),
    }


@pytest.fixture(scope="module")
async def backend(
    backend_kind: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Backend:
    if backend_kind["name"] == "embedded":
        path = tmp_path_factory.mktemp("api") / "openvle.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade_to_head(url)
        return Backend("embedded", url)
    url = await backend_kind["factory"]("api")
    await upgrade_to_head(url)
    return Backend("services", url, backend_kind["redis_url"], backend_kind["mongodb_url"])


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(version="9.1", tls=True, time_scale=0.0) as simulator:
        yield simulator


@pytest.fixture(scope="module")
async def api(
    backend: Backend, sim: Simulator, request: pytest.FixtureRequest
) -> AsyncIterator[Api]:
    # each module its own snapshot database too (the MariaDB one is per module already):
    # a module's sync must not be another's "last sync"
    database = "api_" + request.module.__name__.rsplit(".", 1)[-1]
    async with open_api(backend, sim, mongodb_database=database[:60]) as opened:
        yield opened
