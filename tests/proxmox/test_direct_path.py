"""The Proxmox client's direct path: `KeepAliveTransport.request` without httpx's client
layers, used when none of them applies; the same bytes on the wire either way."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from openvle_core.proxmox import ProxmoxNotFound, build_http_client
from openvle_core.proxmox.http.pool import KeepAliveTransport
from openvle_core.proxmox.transport import ApiCaller, direct_transport
from openvle_pvesim import Simulator
from tests.proxmox.rawserver import answer_each, reply, serve
from tests.proxmox.simclient import FAST_RETRY, Sent, settings_for

FORM = {"name": "lab-1", "description": "a b&c=d"}


async def test_the_same_request_leaves_by_either_path() -> None:
    """Request line, headers (the client's defaults included) and form body are those
    `httpx.AsyncClient.request` sends, for a GET with a query and a POST with a form."""
    responses = [reply(body=b'{"data":null}')] * 4
    async with serve(answer_each(*responses)) as server:
        transport = KeepAliveTransport(verify=False)
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as http:
            headers = httpx.Headers(http.headers)
            headers["Authorization"] = "PVEAPIToken=a@pve!t=s"
            timeouts = http.timeout.as_dict()
            url = server.url + "/api2/json/nodes/pve1/qemu/100/config"
            sent: list[httpx.Response] = []
            for method, query, form in (("GET", {"current": "1"}, None), ("POST", None, FORM)):
                own = {"Authorization": headers["Authorization"]}
                sent.append(await http.request(method, url, params=query, data=form, headers=own))
                sent.append(
                    await transport.request(
                        method, url, headers=headers, timeouts=timeouts, params=query, data=form
                    )
                )
    assert [r.status_code for r in sent] == [200] * 4
    assert [r.json() for r in sent] == [{"data": None}] * 4
    full_get, direct_get, full_post, direct_post = server.requests
    assert direct_get == full_get
    assert direct_post == full_post
    assert b"current=1" in direct_get.split(b"\r\n")[0]
    assert direct_post.endswith(b"name=lab-1&description=a+b%26c%3Dd")
    assert server.connections == 1  # one kept-alive connection served all four


async def test_a_closed_transport_refuses_as_the_client_does() -> None:
    transport = KeepAliveTransport(verify=False)
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.request("GET", "http://127.0.0.1:9/", headers=httpx.Headers(), timeouts={})


def test_the_direct_path_only_for_our_transport_and_no_proxy(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sim)
    assert isinstance(direct_transport(build_http_client(settings)), KeepAliveTransport)
    assert direct_transport(httpx.AsyncClient()) is None
    httpcore = settings.model_copy(update={"http_transport": "httpcore"})
    assert direct_transport(build_http_client(httpcore)) is None
    monkeypatch.setenv("https_proxy", "http://proxy.campus.example:3128")
    assert direct_transport(build_http_client(settings)) is None  # httpx would proxy it


async def test_calls_take_the_direct_path_on_the_simulator(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads (a gzipped list, a query), a write with a form body and a PVE error answer
    all work through the direct path; a client given event hooks is used as it is."""
    settings = settings_for(sim)
    config = "/nodes/{node}/qemu/{vmid}/config"
    async with build_http_client(settings) as http:
        transport = direct_transport(http)
        assert transport is not None
        direct: list[str] = []
        request = transport.request

        async def counted(method: str, url: str, **kwargs: Any) -> httpx.Response:
            direct.append(f"{method} {httpx.URL(url).path.removeprefix('/api2/json')}")
            return await request(method, url, **kwargs)

        monkeypatch.setattr(transport, "request", counted)
        api = ApiCaller(http, settings, retry=FAST_RETRY)
        everything = await api.get("/cluster/resources")  # gzipped by the simulator
        guests = await api.get("/cluster/resources", {"type": "vm"})
        assert 0 < len(guests) < len(everything)
        await api.write("PUT", config, {"description": "direct path"}, node="pve1", vmid=9000)
        written = await api.get(config, node="pve1", vmid=9000)
        assert written["description"] == "direct path"
        with pytest.raises(ProxmoxNotFound, match="does not exist"):
            await api.get(config, node="pve2", vmid=9000)  # it lives on pve1
        assert direct == [
            "GET /cluster/resources",
            "GET /cluster/resources",
            "PUT /nodes/pve1/qemu/9000/config",
            "GET /nodes/pve1/qemu/9000/config",
            "GET /nodes/pve2/qemu/9000/config",
        ]

        httpx_log = logging.getLogger("httpx")
        httpx_log.setLevel(logging.INFO)  # its line per request: httpx's client sends
        try:
            await api.get(config, node="pve1", vmid=9000)
        finally:
            httpx_log.setLevel(logging.WARNING)
        assert len(direct) == 5
        sent = Sent()
        http.event_hooks["request"].append(sent.hook)  # hooks: httpx's client sends
        await api.get(config, node="pve1", vmid=9000)
        assert len(direct) == 5
        assert sent.count("GET", "/nodes/pve1/qemu/9000/config") == 1
        http.event_hooks["request"].clear()
        await api.get(config, node="pve1", vmid=9000)
        assert len(direct) == 6  # direct again
