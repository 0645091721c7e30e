"""API fixtures: the app over ASGI on both setups, with a token per scope.

- `backend` ("embedded": SQLite, in-process queue, snapshot in SQL; "services":
  MariaDB, Redis/arq, nx-27017), one simulator (PVE 9.1, TLS) per module.
- `api`: an `Api` with `client` (httpx on the ASGI app), `runtime`, and `tokens`
  (plain bearer tokens by scope).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api.kit import make_settings
from openvle_api.app import create_app
from openvle_core.db.enums import TokenScope
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.runtime import Runtime, open_runtime
from openvle_core.settings import Settings
from openvle_core.tokens.service import create_token
from openvle_pvesim import Simulator, run_simulator


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None = None
    mongodb_url: str | None = None


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    settings: Settings
    sim: Simulator
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}


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


@contextlib.asynccontextmanager
async def open_api(backend: Backend, sim: Simulator, **settings_kw: Any) -> AsyncIterator[Api]:
    """The app on `backend` with its own runtime and one token per scope."""
    settings = make_settings(
        sim,
        backend.database_url,
        redis_url=backend.redis_url,
        mongodb_url=backend.mongodb_url,
        **settings_kw,
    )
    async with open_runtime(settings) as runtime:
        app = create_app(settings, runtime, auth_cache_ttl=0.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            api = Api(client, runtime, settings, sim)
            async with runtime.sessions() as session, session.begin():
                for scope in TokenScope:
                    _, plain = await create_token(session, f"test-{scope}", scope)
                    api.tokens[scope.value] = plain
            yield api


@pytest.fixture(scope="module")
async def api(backend: Backend, sim: Simulator) -> AsyncIterator[Api]:
    async with open_api(backend, sim) as opened:
        yield opened
