"""Server-Sent Events over a real server: operation progress, the changelog stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from openvle_api.app import create_app
from openvle_core.db.enums import OperationState
from openvle_core.operations.repository import OperationRepository
from tests.api.kit import Api, change, seed
from tests.api.server import serve


async def next_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, Any], str | None]:
    """The next `event:`/`data:` message (comments skipped)."""
    event, data, event_id = "", "", None
    async for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line == "" and event:
            return event, json.loads(data), event_id
    raise AssertionError("stream ended")


async def test_operation_stream_follows_progress_to_the_end(api: Api) -> None:
    async with api.runtime.sessions() as session, session.begin():
        op = await OperationRepository(session).create("test.stream", "test", "t1", total=3)
    app = create_app(api.settings, api.runtime, auth_cache_ttl=0.0, sse_poll=0.02)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        path = f"/api/v1/operations/{op.id}/events"
        async with client.stream("GET", path, headers=api.auth("read")) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            kind, data, _ = await next_event(lines)
            assert (kind, data["state"], data["progress"]) == (
                "state",
                "queued",
                {"done": 0, "total": 3},
            )
            async with api.runtime.sessions() as session, session.begin():
                await OperationRepository(session).set_progress(op.id, 2)
            kind, data, _ = await next_event(lines)
            assert (kind, data["progress"]["done"]) == ("progress", 2)
            async with api.runtime.sessions() as session, session.begin():
                repo = OperationRepository(session)
                await repo.finish(await repo.require(op.id), OperationState.SUCCEEDED)
            kind, data, _ = await next_event(lines)
            assert (kind, data["state"]) == ("state", "succeeded")
            rest = [line async for line in lines]
            assert rest == []


async def test_changelog_stream_resumes_after_an_id(api: Api) -> None:
    app = create_app(api.settings, api.runtime, auth_cache_ttl=0.0, sse_poll=0.02)
    first = change("stream-vm", "stopped", "starting")
    await seed(api.runtime.sessions, first)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        headers = {**api.auth("read"), "Last-Event-ID": str(first.id - 1)}
        async with client.stream("GET", "/api/v1/changelog/stream", headers=headers) as response:
            lines = response.aiter_lines()
            kind, data, event_id = await next_event(lines)
            assert (kind, data["entity_id"], event_id) == ("change", "stream-vm", str(first.id))
            second = change("stream-vm", "starting", "running")
            await seed(api.runtime.sessions, second)
            kind, data, event_id = await next_event(lines)
            assert (data["new"], event_id) == ("running", str(second.id))
