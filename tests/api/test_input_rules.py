"""Input the API must refuse, or change visibly: unknown nodes, control and bidi
characters, names made DNS-safe (with a warning), events already over or already
running, and types as strict as the schema says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openvle_core.db.models import Operation
from tests.api.kit import Api, event_body, node, seed, template, vm

PROBLEM = "application/problem+json"


def assert_422(response: httpx.Response, loc: list[str | int]) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert [e["loc"] for e in body["errors"]] == [loc]
    return body


async def operations(api: Api) -> int:
    async with api.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Operation)) or 0)


@pytest.fixture(scope="module")
async def seeded(api: Api) -> dict[str, str]:
    """Two online nodes and one offline, a template, and a VM on pve1."""
    tpl = template(9600, "tpl-9600")
    placed = vm(None, 1801, node="pve1")
    down = node("pve9")
    down.status = "offline"
    await seed(api.runtime.sessions, node("pve1"), node("pve2"), down, tpl, placed)
    return {"template": tpl.id, "vm": placed.id}


@pytest.mark.parametrize("target", ["../pve1", "pve9", "pve-unknown", "pve1/../pve2"])
async def test_migrate_to_a_node_that_is_not_online_is_422(
    api: Api, seeded: dict[str, str], target: str
) -> None:
    before = await operations(api)
    url = f"/api/v1/vms/{seeded['vm']}/migrate"
    got = await api.client.post(url, json={"target_node": target}, headers=api.auth())
    body = assert_422(got, ["body", "target_node"])
    assert repr(target) in body["detail"]
    assert "online: pve1, pve2" in body["detail"]
    assert await operations(api) == before  # nothing staged


async def test_clone_onto_a_node_that_is_not_online_is_422(
    api: Api, seeded: dict[str, str]
) -> None:
    body = {"template_id": seeded["template"], "node": "../pve1"}
    got = await api.client.post("/api/v1/vms", json=body, headers=api.auth())
    assert_422(got, ["body", "node"])


async def test_a_name_made_dns_safe_says_so(api: Api, seeded: dict[str, str]) -> None:
    body = {"template_id": seeded["template"], "name": "\u0430dmin"}  # Cyrillic a
    got = await api.client.post("/api/v1/vms", json=body, headers=api.auth())
    assert got.status_code == 202, got.text
    warnings = got.json()["warnings"]
    assert len(warnings) == 1
    assert "'admin'" in warnings[0]
    listed = await api.client.get(f"/api/v1/vms/{got.json()['target_id']}", headers=api.auth())
    assert listed.json()["name"] == "admin"
    again = await api.client.get(got.headers["location"], headers=api.auth())
    assert again.json()["warnings"] == warnings  # kept on the operation
    plain = {"template_id": seeded["template"], "name": "lab-07"}
    got = await api.client.post("/api/v1/vms", json=plain, headers=api.auth())
    assert got.json()["warnings"] == []


async def test_a_name_with_nothing_dns_safe_left_is_422(api: Api, seeded: dict[str, str]) -> None:
    body = {"template_id": seeded["template"], "name": "\u5b9e\u9a8c"}
    got = await api.client.post("/api/v1/vms", json=body, headers=api.auth())
    assert_422(got, ["body", "name"])


async def test_a_template_renamed_dns_safe_says_so(api: Api, seeded: dict[str, str]) -> None:
    url = f"/api/v1/templates/{seeded['template']}"
    got = await api.client.patch(url, json={"name": "Débian 13"}, headers=api.auth())
    assert got.status_code == 202, got.text
    assert "'debian-13'" in got.json()["warnings"][0]
    got = await api.client.patch(url, json={"description": "bell\x07"}, headers=api.auth())
    assert_422(got, ["body", "description"])


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name", "Lab\x00"),
        ("name", "Lab\r\nX-Injected: 1"),
        ("name", "Lab \u202eevil"),
        ("name", "Lab \u2067isolate"),
        ("description", "fine\nlines but \x1b[31mred"),
        ("description", "\u200fmark"),
    ],
)
async def test_event_text_with_control_or_bidi_characters_is_422(
    api: Api, seeded: dict[str, str], field: str, text: str
) -> None:
    body = event_body([seeded["template"]], slug="txt1", **{field: text})
    got = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert_422(got, ["body", field])
    fine = event_body([seeded["template"]], slug="txt2", description="two\nlines\tand tab")
    created = await api.client.post("/api/v1/events", json=fine, headers=api.auth())
    assert created.status_code in {201, 409}  # 409: made by an earlier parameter


async def test_an_event_already_over_is_422(api: Api, seeded: dict[str, str]) -> None:
    now = datetime.now(UTC)
    times = {"starts_at": (now - timedelta(hours=3)).isoformat()}
    times["ends_at"] = (now - timedelta(seconds=1)).isoformat()
    body = event_body([seeded["template"]], slug="over1", **times)
    got = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert "already past" in assert_422(got, ["body", "ends_at"])["detail"]
    future = event_body([seeded["template"]], slug="over2")
    created = (await api.client.post("/api/v1/events", json=future, headers=api.auth())).json()
    url = f"/api/v1/events/{created['id']}"
    got = await api.client.patch(url, json={"ends_at": times["ends_at"]}, headers=api.auth())
    assert_422(got, ["body", "ends_at"])


async def test_an_event_already_running_is_deployed_at_once(
    api: Api, seeded: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    times = {"starts_at": (now - timedelta(minutes=5)).isoformat()}
    times["ends_at"] = (now + timedelta(hours=2)).isoformat()
    body = event_body([seeded["template"]], slug="run1", participants=1, **times)
    got = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert got.status_code == 201, got.text
    event = got.json()
    assert event["status"] == "deploying"
    op = await api.client.get(
        f"/api/v1/operations/{event['deploy_operation_id']}", headers=api.auth()
    )
    assert (op.json()["kind"], op.json()["target_id"]) == ("event.deploy", event["id"])


@pytest.mark.parametrize("since", ["0.5", "1700000000", "tomorrow", "2030-01-01"])
async def test_since_must_be_a_date_time(api: Api, since: str) -> None:
    got = await api.client.get("/api/v1/changelog", params={"since": since}, headers=api.auth())
    assert_422(got, ["query", "since"])


async def test_since_takes_a_date_time(api: Api) -> None:
    params = {"since": "2030-01-01T00:00:00Z"}
    got = await api.client.get("/api/v1/changelog", params=params, headers=api.auth())
    assert got.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("migrate", {"target_node": "pve2", "online": 0}, ["body", "online"]),
        ("migrate", {"target_node": "pve2", "online": "true"}, ["body", "online"]),
        ("events", {"participants": "3"}, ["body", "participants"]),
        ("events", {"participants": 3.0}, ["body", "participants"]),
        ("events", {"starts_at": 1900000000}, ["body", "starts_at"]),
        ("events", {"name": 42}, ["body", "name"]),
        ("clone", {"start": 1}, ["body", "start"]),
    ],
)
async def test_bodies_are_typed_strictly(
    api: Api, seeded: dict[str, str], path: str, body: dict[str, Any], loc: list[str]
) -> None:
    if path == "migrate":
        url, full = f"/api/v1/vms/{seeded['vm']}/migrate", body
    elif path == "events":
        url, full = "/api/v1/events", {**event_body([seeded["template"]], slug="typ1"), **body}
    else:
        url, full = "/api/v1/vms", {"template_id": seeded["template"], **body}
    got = await api.client.post(url, json=full, headers=api.auth())
    assert_422(got, loc)
