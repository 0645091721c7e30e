"""Every error is application/problem+json: validation, 404, 409, 503, 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from openvle_api.app import create_app
from openvle_core.operations.errors import TargetBusy
from openvle_core.proxmox import OutsidePool, ProxmoxUnavailable
from openvle_core.proxmox.errors import ProxmoxConflict
from tests.api.kit import Api, event_body, seed, template

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:openvle:problem:{code}"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


async def test_validation_lists_each_field(api: Api) -> None:
    got = await api.client.post(
        "/api/v1/events",
        json={"slug": "NO", "participants": 0, "name": "x"},
        headers=api.auth(),
    )
    body = assert_problem(got, 422, "validation_error")
    locs = {tuple(e["loc"]) for e in body["errors"]}  # type: ignore[attr-defined]
    assert {("body", "slug"), ("body", "participants"), ("body", "starts_at")} <= locs
    assert all(e["msg"] for e in body["errors"])  # type: ignore[attr-defined]


async def test_bad_query_parameters(api: Api) -> None:
    got = await api.client.get("/api/v1/vms", params={"limit": 501}, headers=api.auth())
    body = assert_problem(got, 422, "validation_error")
    assert body["errors"] == [
        {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 500"}
    ]
    got = await api.client.get("/api/v1/vms", params={"cursor": "@@@"}, headers=api.auth())
    body = assert_problem(got, 422, "invalid_cursor")
    assert body["errors"] == [{"loc": ["query", "cursor"], "msg": body["detail"]}]
    got = await api.client.get("/api/v1/vms", params={"status": "asleep"}, headers=api.auth())
    assert_problem(got, 422, "validation_error")


async def test_unknown_ids_and_routes(api: Api) -> None:
    for path, code in [
        ("/api/v1/vms/nope", "vm_not_found"),
        ("/api/v1/templates/nope", "template_not_found"),
        ("/api/v1/events/nope", "event_not_found"),
        ("/api/v1/operations/nope", "operation_not_found"),
        ("/api/v1/nodes/nope", "node_not_found"),
    ]:
        assert_problem(await api.client.get(path, headers=api.auth()), 404, code)
    assert_problem(await api.client.get("/api/v1/nothing", headers=api.auth()), 404, "not_found")
    got = await api.client.put("/api/v1/vms", headers=api.auth())
    assert_problem(got, 405, "method_not_allowed")


async def test_slug_taken_is_a_conflict(api: Api) -> None:
    tpl = template(9300, "tpl-9300")
    await seed(api.runtime.sessions, tpl)
    first = await api.client.post(
        "/api/v1/events", json=event_body([tpl.id], slug="dup1"), headers=api.auth()
    )
    assert first.status_code == 201
    again = await api.client.post(
        "/api/v1/events", json=event_body([tpl.id], slug="dup1"), headers=api.auth()
    )
    body = assert_problem(again, 409, "slug_taken")
    assert body["detail"] == "an event with slug 'dup1' already exists"


@pytest.fixture
def raising_app(api: Api) -> httpx.AsyncClient:
    """The real app plus routes that raise domain errors the cluster cannot easily cause."""
    app = create_app(api.settings, api.runtime)
    errors: dict[str, Exception] = {
        "busy": TargetBusy("vm v1 is busy with operation o1 (vm.clone)", "o1"),
        "outside": OutsidePool(4242, "OpenVLE-VMs"),
        "unavailable": ProxmoxUnavailable("connect timeout to pve1:8006"),
        "locked": ProxmoxConflict("VM is locked (clone)", status=500),
        "boom": RuntimeError("secret internals"),
    }

    def raiser(exc: Exception) -> Callable[[], Awaitable[None]]:
        async def endpoint() -> None:
            raise exc

        return endpoint

    for name, exc in errors.items():
        app.add_api_route(f"/raise/{name}", raiser(exc))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api")


async def test_domain_errors_map_to_statuses(raising_app: httpx.AsyncClient) -> None:
    async with raising_app as client:
        body = assert_problem(await client.get("/raise/busy"), 409, "target_busy")
        assert body["operation_id"] == "o1"
        body = assert_problem(await client.get("/raise/outside"), 404, "outside_pool")
        assert body["detail"] == "VM 4242 is not in pool 'OpenVLE-VMs'"
        got = await client.get("/raise/unavailable")
        assert_problem(got, 503, "proxmox_unavailable")
        assert int(got.headers["retry-after"]) > 0
        assert_problem(await client.get("/raise/locked"), 409, "proxmox_conflict")
        body = assert_problem(await client.get("/raise/boom"), 500, "internal_error")
        assert "secret" not in str(body)


async def test_a_pattern_is_named_in_words(api: Api) -> None:
    got = await api.client.post(
        "/api/v1/events", json={"slug": "Lab 1", "participants": 3}, headers=api.auth()
    )
    body = assert_problem(got, 422, "validation_error")
    slug = [e for e in body["errors"] if e["loc"] == ["body", "slug"]]  # type: ignore[attr-defined]
    assert slug == [{"loc": ["body", "slug"], "msg": "must be 4-8 characters of a-z, 0-9, _ and -"}]
    assert "slug: must be 4-8 characters of a-z, 0-9, _ and -" in str(body["detail"])
    assert "^[" not in str(body["detail"])
