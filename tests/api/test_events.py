"""Events CRUD through HTTP, with the domain's rules."""

from __future__ import annotations

from sqlalchemy import update

from openvle_core.db.models import Event
from tests.api.kit import Api, event_body, seed, template, vm


async def _templates(api: Api, *vmids: int) -> list[str]:
    rows = [template(v, f"tpl-{v}") for v in vmids]
    await seed(api.runtime.sessions, *rows)
    return [r.id for r in rows]


async def _set_status(api: Api, event_id: str, status: str) -> None:
    async with api.runtime.sessions() as session, session.begin():
        await session.execute(update(Event).where(Event.id == event_id).values(status=status))


async def test_create_get_list_update_delete(api: Api) -> None:
    t1, t2 = await _templates(api, 9400, 9401)
    created = await api.client.post(
        "/api/v1/events", json=event_body([t1, t2], slug="crud1"), headers=api.auth()
    )
    assert created.status_code == 201
    event = created.json()
    assert created.headers["location"] == f"/api/v1/events/{event['id']}"
    assert event["template_ids"] == [t1, t2]
    assert event["status"] == "scheduled"
    assert event.pop("deploy_operation_id") is None  # it starts in 2030: nothing deployed yet
    got = await api.client.get(f"/api/v1/events/{event['id']}", headers=api.auth("read"))
    assert got.json() == event
    listed = await api.client.get(
        "/api/v1/events", params={"status": "scheduled", "limit": 500}, headers=api.auth("read")
    )
    assert event["id"] in [e["id"] for e in listed.json()["items"]]
    patched = await api.client.patch(
        f"/api/v1/events/{event['id']}",
        json={"name": "Renamed", "template_ids": [t2], "participants": 10},
        headers=api.auth(),
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed"
    assert patched.json()["template_ids"] == [t2]
    assert patched.json()["participants"] == 10
    gone = await api.client.delete(f"/api/v1/events/{event['id']}", headers=api.auth())
    assert gone.status_code == 204
    again = await api.client.get(f"/api/v1/events/{event['id']}", headers=api.auth())
    assert again.status_code == 404


async def test_invalid_events_are_422_with_the_field(api: Api) -> None:
    (t1,) = await _templates(api, 9402)
    got = await api.client.post(
        "/api/v1/events", json=event_body(["no-such-template"], slug="bad1"), headers=api.auth()
    )
    assert got.status_code == 422
    assert got.json()["errors"] == [
        {"loc": ["body", "template_ids"], "msg": "template no-such-template not found"}
    ]
    body = event_body([t1], slug="bad2")
    body["ends_at"] = body["starts_at"]
    got = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert got.status_code == 422
    assert got.json()["errors"][0]["loc"] == ["body", "ends_at"]
    got = await api.client.post(
        "/api/v1/events", json=event_body([t1], slug="bad3", extra=1), headers=api.auth()
    )
    assert got.status_code == 422


async def test_deployed_events_keep_their_shape(api: Api) -> None:
    (t1,) = await _templates(api, 9403)
    created = await api.client.post(
        "/api/v1/events", json=event_body([t1], slug="live1"), headers=api.auth()
    )
    event_id = created.json()["id"]
    await _set_status(api, event_id, "deployed")
    await seed(api.runtime.sessions, vm(t1, 1500, event_id=event_id))
    url = f"/api/v1/events/{event_id}"
    got = await api.client.patch(url, json={"participants": 5}, headers=api.auth())
    assert got.status_code == 409
    assert got.json()["detail"] == "event live1 is deployed: participants can no longer change"
    got = await api.client.patch(url, json={"name": "Still fine"}, headers=api.auth())
    assert got.status_code == 200
    got = await api.client.delete(url, headers=api.auth())
    assert got.status_code == 409
    await _set_status(api, event_id, "archived")
    got = await api.client.delete(url, headers=api.auth())
    assert got.status_code == 409
    assert "still has VMs" in got.json()["detail"]


async def test_patch_slug_clash(api: Api) -> None:
    (t1,) = await _templates(api, 9404)
    for slug in ("pa-1", "pa-2"):
        await api.client.post(
            "/api/v1/events", json=event_body([t1], slug=slug), headers=api.auth()
        )
    listed = await api.client.get("/api/v1/events", params={"limit": 500}, headers=api.auth())
    second = next(e for e in listed.json()["items"] if e["slug"] == "pa-2")
    got = await api.client.patch(
        f"/api/v1/events/{second['id']}", json={"slug": "pa-1"}, headers=api.auth()
    )
    assert got.status_code == 409
    assert got.json()["type"] == "urn:openvle:problem:slug_taken"


async def test_times_need_a_timezone(api: Api) -> None:
    (t1,) = await _templates(api, 9405)
    body = event_body([t1], slug="naive1", starts_at="2030-03-01T09:00:00")
    got = await api.client.post("/api/v1/events", json=body, headers=api.auth())
    assert got.status_code == 422
    assert got.json()["errors"] == [
        {"loc": ["body", "starts_at"], "msg": "times need a timezone (e.g. 2026-03-01T09:00:00Z)"}
    ]
