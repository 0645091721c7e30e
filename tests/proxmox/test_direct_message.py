"""The direct path's request bytes (`http.message.prepare`): exactly httpx's for the plain
requests the Proxmox client makes, and None (httpx makes them) for anything else."""

from __future__ import annotations

import gzip

import httpx
import pytest

from openvle_core.proxmox.http.connection import Head, request_head
from openvle_core.proxmox.http.message import FieldsCache, prepare, prepared_by_httpx, reply_of

BASE = "https://pve1.campus.example:8006/api2/json"
CLIENT = httpx.Headers(httpx.AsyncClient().headers)
CLIENT["Authorization"] = "PVEAPIToken=openvle@pve!sync=5e1f"


async def httpx_bytes(
    method: str,
    url: str,
    params: dict[str, str] | None,
    data: dict[str, str] | None,
    headers: httpx.Headers = CLIENT,
) -> bytes:
    request = httpx.Request(method, url, params=params, data=data, headers=headers)
    body = await request.aread()
    return request_head(request, len(body)) + body


@pytest.mark.parametrize(
    ("method", "url", "params", "data"),
    [
        ("GET", f"{BASE}/nodes/pve1/qemu/10234/config", None, None),
        ("GET", f"{BASE}/cluster/resources", {"type": "vm"}, None),
        ("GET", f"{BASE}/nodes/pve1/tasks/UPID%3Apve1%3A0001%3A%3A/status", None, None),
        ("GET", f"{BASE}/pools", {"poolid": "Lab A&B", "type": "qemu"}, None),
        ("POST", f"{BASE}/nodes/pve1/qemu/9000/clone", None, {"newid": "101", "name": "a b"}),
        ("POST", f"{BASE}/nodes/pve1/qemu/101/status/start", None, None),
        ("PUT", f"{BASE}/nodes/pve1/qemu/101/config", None, {"description": "x=y&z\n"}),
        ("DELETE", f"{BASE}/nodes/pve1/qemu/101", {"purge": "1"}, None),
        ("GET", "https://10.0.0.5:8006/api2/json/version", None, None),
        ("GET", "https://[fd00::5]:8006/api2/json/version", None, None),
        ("GET", "https://pve.example/api2/json/version", None, None),  # the default port
        ("GET", "http://127.0.0.1:8007/api2/json/", None, None),
    ],
)
async def test_plain_requests_are_the_bytes_httpx_sends(
    method: str, url: str, params: dict[str, str] | None, data: dict[str, str] | None
) -> None:
    prepared = prepare(method, url, CLIENT, params, data, FieldsCache())
    assert prepared is not None
    assert prepared.message == await httpx_bytes(method, url, params, data)
    assert prepared == await prepared_by_httpx(
        httpx.Request(method, url, params=params, data=data, headers=CLIENT)
    )


@pytest.mark.parametrize(
    ("url", "params", "headers"),
    [
        ("https://PVE1.campus.example:8006/api2/json/version", None, CLIENT),  # httpx lowers
        ("https://pve1:8006/api2/json/a/../version", None, CLIENT),  # dot segments
        ("https://pve1:8006/api2/json/a b", None, CLIENT),  # httpx quotes
        ("https://pve1:8006/api2/json/%2f", None, CLIENT),  # a lower-case escape
        ("https://pve1:8006/api2/json/version?x=1", {"y": "2"}, CLIENT),  # params replace it
        ("https://pve1:8006/api2/json/version", {"full": 1}, CLIENT),  # not a string
        ("https://pve1:8006", None, CLIENT),  # no path
        ("https://pve1:8006/api2/json/version", None, httpx.Headers({"Host": "elsewhere"})),
    ],
)
async def test_anything_else_is_left_to_httpx(
    url: str, params: dict[str, object] | None, headers: httpx.Headers
) -> None:
    assert prepare("GET", url, headers, params, None, FieldsCache()) is None  # type: ignore[arg-type]


def test_header_lines_are_checked_once_per_set_and_bounded() -> None:
    checked = FieldsCache()
    for vmid in range(100, 140):
        prepare("GET", f"{BASE}/nodes/pve1/qemu/{vmid}/config", CLIENT, None, None, checked)
    assert len(checked) == 1
    for n in range(40):  # another token each time: the cache does not grow past its bound
        headers = httpx.Headers({"Authorization": f"PVEAPIToken=u@pve!t{n}=s"})
        assert prepare("GET", f"{BASE}/version", headers, None, None, checked) is not None
    assert len(checked) <= FieldsCache.MAX
    bad = httpx.Headers({"X-Bad": "a\r\nInjected: 1"})
    assert prepare("GET", f"{BASE}/version", bad, None, None, checked) is None


async def test_a_reply_is_decoded_as_httpx_decodes_it() -> None:
    body = b'{"data":[1,2,3]}'
    plain = Head(b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"16")], 16, False, False)
    reply = await reply_of(plain, body)
    assert (reply.status_code, reply.reason_phrase, reply.is_success) == (200, "OK", True)
    assert reply.json() == {"data": [1, 2, 3]}
    coded = [(b"Content-Encoding", b"gzip")]
    zipped = Head(b"HTTP/1.1", 200, b"OK", coded, None, False, False)
    assert (await reply_of(zipped, gzip.compress(body))).content == body
    error = Head(b"HTTP/1.1", 596, b"Connection timed out", [], 0, False, False)
    failed = await reply_of(error, b"")
    assert (failed.is_success, failed.reason_phrase) == (False, "Connection timed out")
