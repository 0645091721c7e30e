"""POST /events/{id}/deploy and /archive through the API: 202 + operation + Location,
the work done on the simulator, and the refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openvle_core.db.migrate import upgrade_to_head
from openvle_pvesim import run_simulator
from tests.api.kit import Api, Backend, event_body, open_api, seed, template


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The app on the embedded default (SQLite, in-process queue) and a simulator."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'openvle.sqlite3'}"
    await upgrade_to_head(url)
    async with (
        run_simulator(version="9.1", tls=True, time_scale=0.0) as sim,
        open_api(Backend("embedded", url), sim) as opened,
    ):
        yield opened


async def _follow(api: Api, location: str) -> dict[str, Any]:
    """GET the operation until it finished."""
    for _ in range(600):
        body: dict[str, Any] = (await api.client.get(location, headers=api.auth("read"))).json()
        if body["state"] in {"succeeded", "failed"}:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{location} did not finish")


async def _vms(api: Api, event_id: str) -> list[dict[str, Any]]:
    got = await api.client.get(f"/api/v1/vms?event_id={event_id}", headers=api.auth("read"))
    items: list[dict[str, Any]] = got.json()["items"]
    return items


async def test_deploy_and_archive_through_the_api(api: Api) -> None:
    tpl = template(9000, "debian-12-template")
    await seed(api.runtime.sessions, tpl)
    made = await api.client.post(
        "/api/v1/events",
        json=event_body([tpl.id], slug="web_1", participants=2),
        headers=api.auth(),
    )
    event_id = made.json()["id"]

    got = await api.client.post(f"/api/v1/events/{event_id}/deploy", headers=api.auth())

    assert got.status_code == 202
    assert got.json()["kind"] == "event.deploy"
    assert got.headers["location"] == f"/api/v1/operations/{got.json()['id']}"
    done = await _follow(api, got.headers["location"])
    assert (done["state"], done["progress"]) == ("succeeded", {"done": 2, "total": 2})
    vms = await _vms(api, event_id)
    assert sorted(v["name"] for v in vms) == [
        "web-1-001-debian-12-template",
        "web-1-002-debian-12-template",
    ]
    assert {(v["status"], v["ha_managed"]) for v in vms} == {("running", True)}
    event = await api.client.get(f"/api/v1/events/{event_id}", headers=api.auth("read"))
    assert event.json()["status"] == "deployed"

    got = await api.client.post(f"/api/v1/events/{event_id}/archive", headers=api.auth())

    assert got.status_code == 202
    assert (await _follow(api, got.headers["location"]))["state"] == "succeeded"
    assert await _vms(api, event_id) == []
    event = await api.client.get(f"/api/v1/events/{event_id}", headers=api.auth("read"))
    assert event.json()["status"] == "archived"
    again = await api.client.post(f"/api/v1/events/{event_id}/deploy", headers=api.auth())
    assert again.status_code == 409


async def test_deploy_needs_admin_and_an_existing_event(api: Api) -> None:
    got = await api.client.post("/api/v1/events/nope/deploy", headers=api.auth("operate"))
    assert got.status_code == 403
    got = await api.client.post("/api/v1/events/nope/archive", headers=api.auth())
    assert got.status_code == 404
