"""Helpers for API tests: settings for a simulator and a database, seeding rows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_api.app import create_app
from openvle_core.db.enums import TokenScope
from openvle_core.db.models import ChangelogEntry, Node, Template, Vm
from openvle_core.handlers import run_operation
from openvle_core.runtime import Runtime, open_runtime
from openvle_core.settings import (
    ProxmoxSettings,
    Settings,
    load_settings,
)
from openvle_core.tokens.service import create_token
from openvle_pvesim import Simulator

CI_TOKEN = "openvle@pve!ci"


def make_settings(
    sim: Simulator,
    database_url: str,
    *,
    redis_url: str | None = None,
    mongodb_url: str | None = None,
    mongodb_database: str = "openvle",
    metrics_token: str | None = None,
) -> Settings:
    """A whole Settings tree for tests (no environment, no .env)."""
    return load_settings(
        env_file=None,
        proxmox={
            **ProxmoxSettings.values_for(
                sim.hostname, CI_TOKEN, sim.tokens[CI_TOKEN], sim.ca_file or False
            ),
            "retry_attempts": 1,
            "retry_total_time": 2.0,
        },
        database={"url": SecretStr(database_url)},
        mongodb={
            "url": SecretStr(mongodb_url) if mongodb_url else None,
            "database": mongodb_database,
        },
        redis={"url": SecretStr(redis_url) if redis_url else None},
        worker={"agent_ip_first_poll": 0.05},  # the simulators here answer at once
        api={"METRICS_TOKEN": SecretStr(metrics_token) if metrics_token else None},
    )


async def seed(sessions: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    """Insert rows and commit."""
    async with sessions() as session, session.begin():
        session.add_all(rows)


def node(name: str = "pve1") -> Node:
    return Node(name=name, status="online", cpu=0.1, maxcpu=8, mem=1 << 30, maxmem=8 << 30)


def template(vmid: int = 9000, name: str = "debian-12") -> Template:
    return Template(vmid=vmid, name=name, node="pve1", cores=2, memory_mb=2048)


def vm(template_id: str | None, vmid: int, **fields: Any) -> Vm:
    values: dict[str, Any] = {"name": f"vm-{vmid}", "node": "pve1", "status": "running"}
    return Vm(template_id=template_id, vmid=vmid, **{**values, **fields})


def change(entity_id: str, old: str, new: str) -> ChangelogEntry:
    return ChangelogEntry(
        entity="vm", entity_id=entity_id, field="status", old=old, new=new, source="sync"
    )


def event_body(template_ids: list[str], slug: str = "sec101", **fields: Any) -> dict[str, Any]:
    start = datetime(2030, 3, 1, 9, tzinfo=UTC)
    body: dict[str, Any] = {
        "slug": slug,
        "name": "Security 101",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=8)).isoformat(),
        "template_ids": template_ids,
        "participants": 3,
    }
    return {**body, **fields}


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


async def sync(api: Api) -> None:
    """One sync of the cluster now, as the periodic tick runs it (no operation row)."""
    from openvle_core.sync.service import sync_cluster

    runtime = api.runtime
    result = await sync_cluster(
        sessions=runtime.sessions,
        proxmox=runtime.proxmox,
        snapshot=runtime.snapshot,
        settings=runtime.settings,
    )
    assert result.ok, result.error


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
    async with open_runtime(settings, runner=run_operation) as runtime:
        app = create_app(settings, runtime, auth_cache_ttl=0.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            api = Api(client, runtime, settings, sim)
            async with runtime.sessions() as session, session.begin():
                for scope in TokenScope:
                    _, plain = await create_token(session, f"test-{scope}", scope)
                    api.tokens[scope.value] = plain
            yield api
