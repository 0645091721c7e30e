"""Request bodies: authentication before the body, the size limit, JSON only, and where a
broken JSON document breaks; 405 names every method the path serves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from openvle_api.app import create_app
from openvle_api.routing import GuardedRoute, required_scope
from tests.api.kit import Api

PROBLEM = "application/problem+json"
LIMIT = 1 << 20  # the default API_MAX_BODY_BYTES
BODY_ROUTES = [
    ("POST", "/api/v1/vms"),
    ("POST", "/api/v1/vms/x/migrate"),
    ("POST", "/api/v1/templates"),
    ("PATCH", "/api/v1/templates/x"),
    ("POST", "/api/v1/events"),
    ("PATCH", "/api/v1/events/x"),
]


class ReadCounter:
    """A request body sent in chunks, counting how many chunks the server pulled."""

    def __init__(self, chunks: int, size: int = 64 * 1024, content: bytes = b" ") -> None:
        self.chunks, self.size, self.content, self.pulled = chunks, size, content, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield self.content * self.size


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["type"] == f"urn:openvle:problem:{code}"
    assert body["status"] == status
    return body


def test_every_route_with_a_body_authenticates_before_reading_it(api: Api) -> None:
    app = create_app(api.settings, api.runtime)
    with_body = [
        route
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, APIRoute) and route.body_field is not None
    ]
    assert len(with_body) == len(BODY_ROUTES)
    for route in with_body:
        assert isinstance(route, GuardedRoute), route.path
        assert required_scope(route.dependant) is not None, route.path


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_no_token_is_401_before_the_body_is_read(api: Api, method: str, path: str) -> None:
    body = ReadCounter(chunks=32)  # 2 MiB, streamed without a Content-Length
    got = await api.client.request(method, path, content=body)
    assert_problem(got, 401, "unauthorized")
    assert body.pulled <= 1  # the transport may hand over one chunk; nobody asked for more


async def test_too_small_a_scope_is_403_before_the_body_is_read(api: Api) -> None:
    body = ReadCounter(chunks=32)
    headers = {**api.auth("operate"), "Content-Type": "application/json"}
    got = await api.client.post("/api/v1/vms", content=body, headers=headers)
    assert_problem(got, 403, "forbidden")
    assert body.pulled <= 1


async def test_declared_length_over_the_limit_is_413_unread(api: Api) -> None:
    body = ReadCounter(chunks=32)
    headers = {"Content-Length": str(32 * 64 * 1024), "Content-Type": "application/json"}
    got = await api.client.post("/api/v1/events", content=body, headers=headers)
    problem = assert_problem(got, 413, "content_too_large")
    assert "API_MAX_BODY_BYTES" in str(problem["detail"])
    assert str(LIMIT) in str(problem["detail"])
    assert body.pulled <= 1


async def test_streamed_body_over_the_limit_is_413_at_the_limit(api: Api) -> None:
    body = ReadCounter(chunks=64)  # 4 MiB, chunked: counted as it arrives
    headers = {**api.auth(), "Content-Type": "application/json"}
    got = await api.client.post("/api/v1/events", content=body, headers=headers)
    assert_problem(got, 413, "content_too_large")
    assert body.pulled <= LIMIT // body.size + 2  # reading stopped right after the limit


async def test_body_within_the_limit_is_read(api: Api) -> None:
    padding = "x" * (LIMIT - 4096)
    got = await api.client.post("/api/v1/events", json={"description": padding}, headers=api.auth())
    assert_problem(got, 422, "validation_error")  # read and validated, not refused


async def test_malformed_json_is_400_with_line_and_column(api: Api) -> None:
    text = '{\n  "slug": "abcd",\n  "name": "x" "participants": 3\n}'
    headers = {**api.auth(), "Content-Type": "application/json"}
    got = await api.client.post("/api/v1/events", content=text, headers=headers)
    body = assert_problem(got, 400, "invalid_json")
    assert (body["line"], body["column"]) == (3, 15)
    assert "line 3, column 15" in str(body["detail"])
    assert "Expecting ',' delimiter" in str(body["detail"])


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_body_that_is_not_json_is_415_with_a_hint(api: Api, content_type: str | None) -> None:
    headers = api.auth() | ({"Content-Type": content_type} if content_type else {})
    got = await api.client.post("/api/v1/events", content=b'{"slug": "abcd"}', headers=headers)
    body = assert_problem(got, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in str(body["detail"])
    assert got.headers["accept-post"] == "application/json"


async def test_json_with_a_charset_or_suffix_is_accepted(api: Api) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        headers = {**api.auth(), "Content-Type": content_type}
        got = await api.client.post("/api/v1/events", content=b"{}", headers=headers)
        assert_problem(got, 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/vms", "GET, POST"),
        ("PUT", "/api/v1/vms", "GET, POST"),
        ("PUT", "/api/v1/events/x", "DELETE, GET, PATCH"),
        ("GET", "/api/v1/sync", "POST"),
        ("HEAD", "/api/v1/vms", "GET, POST"),
    ],
)
async def test_405_allow_lists_every_method_of_the_path(
    api: Api, method: str, path: str, allow: str
) -> None:
    got = await api.client.request(method, path, headers=api.auth())
    assert got.status_code == 405
    if method != "HEAD":  # a HEAD answer has no body
        assert_problem(got, 405, "method_not_allowed")
    assert got.headers["allow"] == allow
