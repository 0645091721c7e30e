"""Envelope, headers, reason phrases, routing and request validation over real HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from openvle_pvesim import Simulator
from openvle_pvesim.app import Router, _merge_params
from openvle_pvesim.contract import ROUTES, Request
from openvle_pvesim.errors import PVEError


async def test_version_envelope_and_headers(ci: httpx.AsyncClient, sim: Simulator) -> None:
    response = await ci.get("/version")
    assert response.status_code == 200
    assert response.reason_phrase == "OK"
    assert set(response.json()) == {"data"}
    assert response.json()["data"]["release"] == sim.version
    assert response.headers["server"] == "pve-api-daemon/3.0"
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert response.headers["cache-control"] == "max-age=0"
    assert response.headers["pragma"] == "no-cache"
    assert "expires" in response.headers


async def test_unknown_path_is_501_with_the_method_in_the_reason(ci: httpx.AsyncClient) -> None:
    response = await ci.get("/foo")
    assert response.status_code == 501
    assert response.reason_phrase == "Method 'GET /foo' not implemented"
    assert response.json() == {"data": None, "message": "Method 'GET /foo' not implemented"}


def needs_route(method: str, template: str) -> None:
    """Skip until the model registers the handler this test drives."""
    if (method, template) not in ROUTES:
        pytest.skip(f"{method} {template} is not implemented by the model yet")


async def _handler(request: Request) -> None:
    return None


def test_router_only_knows_templates_of_its_version() -> None:
    routes = {("GET", "/cluster/ha/rules"): _handler, ("GET", "/nodes/{node}/status"): _handler}
    assert Router("8.4", routes).match("GET", "/cluster/ha/rules") is None
    assert Router("9.1", routes).match("GET", "/cluster/ha/rules") == ("/cluster/ha/rules", {})
    assert Router("9.1", routes).match("GET", "/nodes/pve%31/status") == (
        "/nodes/{node}/status",
        {"node": "pve1"},
    )
    assert Router("9.1", routes).match("POST", "/nodes/pve1/status") is None


async def test_get_with_a_body_is_501(ci: httpx.AsyncClient) -> None:
    response = await ci.request("GET", "/version", content=b"x=1")
    assert response.status_code == 501
    assert response.json()["message"] == "Unexpected content for method 'GET'"


async def test_string_boolean_is_a_400_with_pves_text(ci: httpx.AsyncClient) -> None:
    response = await ci.get("/nodes/pve1/qemu", params={"full": "true"})
    assert response.status_code == 400
    assert response.reason_phrase == "Parameter verification failed."
    assert response.json() == {
        "data": None,
        "message": "Parameter verification failed.\n",
        "errors": {"full": "type check ('boolean') failed - got 'true'"},
    }
    assert (await ci.get("/nodes/pve1/qemu", params={"full": "1"})).status_code == 200
    assert (await ci.get("/nodes/pve1/qemu", params={"full": "0"})).status_code == 200


async def test_validation_texts(ci: httpx.AsyncClient) -> None:
    unknown = await ci.get("/version", params={"colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == {
        "colour": "property is not defined in schema and the schema does not allow "
        "additional properties"
    }
    vmid = await ci.get("/cluster/nextid", params={"vmid": "99"})
    assert vmid.json()["errors"] == {
        "vmid": "invalid format - value does not look like a valid VM ID\n"
    }
    text = await ci.get("/cluster/nextid", params={"vmid": "abc"})
    assert text.json()["errors"] == {"vmid": "type check ('integer') failed - got 'abc'"}
    enum = await ci.get("/cluster/resources", params={"type": "pool"})
    assert enum.json()["errors"] == {
        "type": "value 'pool' does not have a value in the enumeration 'vm, storage, node, sdn'"
    }
    node = await ci.get("/nodes/pve_1/status")
    assert node.json()["errors"] == {
        "node": "invalid format - value does not look like a valid node name\n"
    }


async def test_smbios1_fields_must_be_base64(admin: httpx.AsyncClient) -> None:
    needs_route("PUT", "/nodes/{node}/qemu/{vmid}/config")
    bad = await admin.put("/nodes/pve1/qemu/9000/config", data={"smbios1": "serial=ABC-123"})
    assert bad.status_code == 400
    assert bad.json()["errors"]["smbios1"] == (
        "invalid format - format error\nsmbios1.serial: value does not match the regex pattern\n"
    )
    good = await admin.put(
        "/nodes/pve1/qemu/9000/config", data={"smbios1": "serial=QUJDLTEyMw==,base64=1"}
    )
    assert good.status_code == 200, good.text


async def test_form_and_json_bodies_are_accepted(admin: httpx.AsyncClient) -> None:
    needs_route("POST", "/nodes/{node}/qemu/{vmid}/clone")
    form = await admin.post(
        "/nodes/pve1/qemu/9000/clone",
        data={"newid": "150", "full": "0", "pool": "OpenVLE-VMs"},
    )
    assert form.status_code == 200, form.text
    assert form.json()["data"].startswith("UPID:pve1:")
    as_json = await admin.post(
        "/nodes/pve1/qemu/9000/clone", json={"newid": 151, "full": False, "name": "vm-151"}
    )
    assert as_json.status_code == 200, as_json.text


async def test_body_parameter_conflicting_with_the_uri_is_a_400(admin: httpx.AsyncClient) -> None:
    needs_route("POST", "/nodes/{node}/qemu/{vmid}/clone")
    response = await admin.post(
        "/nodes/pve1/qemu/9000/clone", data={"newid": "150", "vmid": "9001"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "vmid": "duplicate parameter (already defined in URI) with conflicting values!"
    }


def test_merge_params_takes_query_form_and_json() -> None:
    form = _merge_params(
        "POST",
        "a=1",
        {"content-type": "application/x-www-form-urlencoded"},
        b"b=2&c=",
        {"node": "pve1"},
    )
    assert form == {"a": "1", "b": "2", "c": "", "node": "pve1"}
    repeated = _merge_params("PUT", "", {}, b"delete=tags&delete=name", {})
    assert repeated == {"delete": ["tags", "name"]}
    body = json.dumps({"full": True, "newid": 101}).encode()
    as_json = _merge_params("PUT", "", {"content-type": "application/json"}, body, {})
    assert as_json == {"full": True, "newid": 101}
    with pytest.raises(PVEError) as conflict:
        _merge_params("POST", "", {}, b"node=pve2", {"node": "pve1"})
    assert conflict.value.errors == {
        "node": "duplicate parameter (already defined in URI) with conflicting values!"
    }


async def test_semantic_errors_carry_the_message_in_the_reason(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/nodes/nosuchnode/status")
    assert response.status_code == 500
    message = response.json()["message"]
    assert message == "no such cluster node 'nosuchnode'\n"
    assert response.reason_phrase == "no such cluster node 'nosuchnode'"


async def test_nextid_is_a_string(ci: httpx.AsyncClient) -> None:
    response = await ci.get("/cluster/nextid")
    assert isinstance(response.json()["data"], str)
    assert response.json()["data"].isdigit()


async def test_large_bodies_are_gzipped_when_accepted(ci: httpx.AsyncClient) -> None:
    big = await ci.get("/cluster/resources", headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert isinstance(big.json()["data"], list)
    small = await ci.get("/version", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    plain = await ci.get("/cluster/resources", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    deflated = await ci.get("/cluster/resources", headers={"Accept-Encoding": "deflate"})
    assert deflated.headers["content-encoding"] == "deflate"
    ids = [item["id"] for item in deflated.json()["data"]]
    assert ids == [item["id"] for item in plain.json()["data"]]


async def test_keep_alive_serves_several_requests_on_one_connection(sim: Simulator) -> None:
    host, port = sim.hostname.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    token = "root@pam!admin=" + sim.tokens["root@pam!admin"]
    request = (
        f"GET /api2/json/version HTTP/1.1\r\nHost: {sim.hostname}\r\n"
        f"Authorization: PVEAPIToken={token}\r\nAccept-Encoding: gzip\r\n\r\n"
    ).encode()
    bodies = []
    for _ in range(2):
        writer.write(request)
        status = await reader.readline()
        assert status == b"HTTP/1.1 200 OK\r\n"
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length)
        bodies.append(json.loads(body))
    writer.close()
    assert bodies[0] == bodies[1]
    assert bodies[0]["data"]["release"] == sim.version
