"""Metrics, the OpenAPI document and the bundled documentation pages."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

import httpx
from arq.constants import default_queue_name

import openvle_api.schemas
from openvle_api import docs
from openvle_api.app import create_app
from openvle_core.health import queue_depth
from openvle_core.queue import ArqQueue, InProcessQueue
from openvle_pvesim import Simulator
from tests.api.kit import Api, Backend, open_api


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    await api.client.get("/api/v1/vms/some-id", headers=api.auth("read"))
    text = (await api.client.get("/metrics")).text
    assert (
        'openvle_http_requests_total{method="GET",route="/api/v1/vms/{vm_id}",status="404"}' in text
    )
    assert "some-id" not in text
    assert "openvle_http_request_seconds_bucket" in text
    assert "openvle_proxmox_requests" in text


async def test_metrics_operation_counts_come_from_the_database(api: Api) -> None:
    from openvle_core.operations.repository import OperationRepository

    async with api.runtime.sessions() as session, session.begin():
        await OperationRepository(session).create("test.metrics", "test", "m1", exclusive=False)
    text = (await api.client.get("/metrics")).text
    assert 'openvle_operations_current{kind="test.metrics",state="queued"} 1.0' in text


async def test_metrics_token(backend: Backend, sim: Simulator) -> None:
    async with open_api(backend, sim, metrics_token="scrape-me") as api:
        assert (await api.client.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await api.client.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer scrape-me"}
        assert (await api.client.get("/metrics", headers=right)).status_code == 200


async def test_openapi_document(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    ops = {
        op["operationId"]: (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    assert {"listVms", "getVm", "createEvent", "streamChanges", "requestSync"} <= set(ops)
    for op_id, (_path, _method, op) in ops.items():
        assert op["tags"], op_id
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and op_id != "getReadiness":
                content = response["content"]
                assert list(content) == ["application/problem+json"], (op_id, status)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert ops["getVm"][2]["responses"]["404"]["description"]


async def test_docs_pages_use_local_assets(api: Api) -> None:
    pages = [("/docs", "/docs/static/swagger-ui-bundle.js"), ("/redoc", docs.REDOC_JS)]
    for page, asset in pages:
        html = (await api.client.get(page)).text
        assert asset in html
        assert "cdn." not in html
        script = await api.client.get(asset)
        assert script.status_code == 200
        assert len(script.content) > 100_000
    assert '"validatorUrl": null' in (await api.client.get("/docs")).text


async def test_redoc_logo_is_served_here_not_from_its_cdn(api: Api) -> None:
    bundled = (docs.ASSETS / "redoc.standalone.js").read_text()
    assert docs.REDOC_CDN_LOGO in bundled  # what the package ships, and what we replace
    served = (await api.client.get(docs.REDOC_JS)).text
    assert "cdn.redoc.ly" not in served
    assert f'src:"{docs.REDOC_LOGO}"' in served
    logo = await api.client.get(docs.REDOC_LOGO)
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"
    assert logo.content.startswith(b"<svg")


async def test_metrics_queue_depth(api: Api) -> None:
    text = (await api.client.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith("openvle_queue_depth ")]
    assert len(lines) == 1
    if isinstance(api.runtime.queue, ArqQueue):  # read from Redis at scrape time
        waiting = await api.runtime.queue.pool.zcard(default_queue_name)
        assert float(lines[0].split()[1]) == waiting


def schema_class(name: str) -> Any:
    """The schema class `name` from whichever module of openvle_api.schemas defines it."""
    package = openvle_api.schemas
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(name)


async def test_request_bodies_carry_valid_examples(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    bodies = {
        op["operationId"]: op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for item in doc["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    mutations = {"createVm", "migrateVm", "createTemplate", "updateTemplate", "createEvent"}
    assert mutations | {"updateEvent"} <= set(bodies)
    for op_id, ref in bodies.items():
        name = ref.rsplit("/", 1)[-1]
        examples = doc["components"]["schemas"][name].get("examples")
        assert examples, f"{op_id}: request body {name} has no examples"
        model = schema_class(name)
        for example in examples:
            model.model_validate(example)  # an example a client copies must be accepted


class _CountingQueue:
    """A queue that can tell its depth (the optional `depth()` of the JobQueue port)."""

    async def enqueue(self, op_id: str, *, key: str | None = None) -> None:
        """Never called here."""

    async def close(self) -> None:
        """Nothing to release."""

    async def depth(self) -> int:
        return 7


async def test_metrics_ask_a_queue_for_its_depth(api: Api) -> None:
    runtime = dataclasses.replace(api.runtime, queue=_CountingQueue())
    transport = httpx.ASGITransport(app=create_app(api.settings, runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        text = (await client.get("/metrics")).text
    assert "openvle_queue_depth 7.0" in text.splitlines()
    assert await queue_depth(InProcessQueue()) is None  # it keeps the gauge itself


async def test_landing_page_links_the_docs_console_and_health(api: Api) -> None:
    import re

    got = await api.client.get("/")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/html")
    html = got.text
    assert "Proxmox service" in html
    links = re.findall(r'href="([^"]*)"', html)
    assert {"docs", "redoc", "console/", "health/ready"} <= set(links)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from another host
    assert "<script" not in html
    for link in set(links) - {"console/"}:  # the console is its own package
        assert (await api.client.get(f"/{link}")).status_code == 200, link
