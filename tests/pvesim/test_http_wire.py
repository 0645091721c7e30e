"""The simulator's own HTTP/1.1 framing, byte by byte over a raw socket."""

from __future__ import annotations

import asyncio
import json

from openvle_pvesim import Simulator

Head = tuple[bytes, dict[str, str]]


async def open_raw(sim: Simulator) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = sim.hostname.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


def request(sim: Simulator, line: str, *extra: str, body: bytes = b"") -> bytes:
    """A request with the admin token; `extra` header lines come before the blank line."""
    token = "root@pam!admin=" + sim.tokens["root@pam!admin"]
    lines = [line, f"Host: {sim.hostname}", f"Authorization: PVEAPIToken={token}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[Head, bytes]:
    status = await reader.readline()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return (status, headers), body


async def test_pipelined_requests_are_answered_in_order(sim: Simulator) -> None:
    reader, writer = await open_raw(sim)
    version = request(sim, "GET /api2/json/version HTTP/1.1")
    missing = request(sim, "GET /api2/json/nosuch HTTP/1.1")
    writer.write(version + missing)
    (first, _), body = await read_response(reader)
    (second, headers), _ = await read_response(reader)
    writer.close()
    assert first == b"HTTP/1.1 200 OK\r\n"
    assert json.loads(body)["data"]["release"] == sim.version
    assert second == b"HTTP/1.1 501 Method 'GET /nosuch' not implemented\r\n"
    assert headers["server"] == "pve-api-daemon/3.0"
    assert "connection" not in headers


async def test_http_1_0_and_connection_close_end_the_connection(sim: Simulator) -> None:
    for raw in (
        request(sim, "GET /api2/json/version HTTP/1.0"),
        request(sim, "GET /api2/json/version HTTP/1.1", "Connection: close"),
    ):
        reader, writer = await open_raw(sim)
        writer.write(raw)
        (status, headers), body = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK\r\n"
        assert headers["connection"] == "close"
        assert json.loads(body)["data"]["release"] == sim.version
        assert await reader.read() == b""
        writer.close()


async def test_head_gets_the_headers_without_a_body(sim: Simulator) -> None:
    reader, writer = await open_raw(sim)
    writer.write(request(sim, "HEAD /api2/json/version HTTP/1.1"))
    writer.write(request(sim, "GET /api2/json/version HTTP/1.1"))
    status = await reader.readline()
    while await reader.readline() != b"\r\n":
        pass
    (after, _), _ = await read_response(reader)  # the next reply follows the head directly
    writer.close()
    assert status.startswith(b"HTTP/1.1 501 ")
    assert after == b"HTTP/1.1 200 OK\r\n"


async def refused(sim: Simulator, raw: bytes) -> tuple[bytes, bytes]:
    """Send `raw`; return the status line and everything after the head until EOF."""
    reader, writer = await open_raw(sim)
    writer.write(raw)
    try:
        status = await asyncio.wait_for(reader.readline(), timeout=5)
        while await reader.readline() not in (b"\r\n", b""):
            pass
        rest = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    return status, rest


SMUGGLED = b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_malformed_requests_get_400_and_the_connection_closes(sim: Simulator) -> None:
    """What llhttp refuses is answered `400 bad request`; nothing after it is read."""
    post = "POST /api2/json/pools HTTP/1.1"
    for raw in (
        b"NOT A REQUEST\r\n\r\n",
        b"GET /api2/json/version HTTP/1.1\r\n\r\n",  # no Host
        request(sim, "GET /api2/json/version HTTP/1.1", "Bad Header: x"),
        request(sim, post, "Content-Length: nope"),
        request(sim, post, "Content-Length: -1"),
        request(sim, post, "Content-Length: \u00b2"),
        request(sim, post, "Content-Length: 2", "Content-Length: 49", body=b"{}" + SMUGGLED),
        request(sim, post, "Content-Length: 2", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")
        + SMUGGLED,
    ):
        status, rest = await refused(sim, raw)
        assert status == b"HTTP/1.1 400 bad request\r\n", raw
        assert rest == b"bad request", raw  # the text as body; no second reply follows


async def test_transfer_codings_get_501_as_pve_has_no_chunked_support(sim: Simulator) -> None:
    """pve-http-server answers any Transfer-Encoding 501 and closes (AnyEvent.pm)."""
    post = "POST /api2/json/pools HTTP/1.1"
    for size in (b"1_0", b"0x2", b"-1", b"4"):
        chunked = request(sim, post, "Transfer-Encoding: chunked", body=size + b"\r\nabcd\r\n")
        status, rest = await refused(sim, chunked + b"0\r\n\r\n" + SMUGGLED)
        assert status == b"HTTP/1.1 501 chunked transfer encoding not supported\r\n"
        assert rest == b"chunked transfer encoding not supported"
    status, _ = await refused(sim, request(sim, post, "Transfer-Encoding: gzip"))
    assert status == b"HTTP/1.1 501 Unknown transfer encoding 'gzip'\r\n"


async def test_an_oversized_head_is_refused(sim: Simulator) -> None:
    huge = b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70_000 + b"\r\n\r\n"
    status, _ = await refused(sim, huge)
    assert status == b"HTTP/1.1 431 header too large\r\n"
    endless = b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 200_000
    status, _ = await refused(sim, endless)
    assert status == b"HTTP/1.1 431 header too large\r\n"


async def test_a_peer_closing_inside_a_request_gets_no_reply(sim: Simulator) -> None:
    reader, writer = await open_raw(sim)
    writer.write(request(sim, "POST /api2/json/pools HTTP/1.1", "Content-Length: 10") + b"abc")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()
