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


async def test_a_chunked_body_is_decoded(sim: Simulator) -> None:
    reader, writer = await open_raw(sim)
    chunks = b"4\r\nbogu\r\n3;ext=1\r\ns=1\r\n0\r\n\r\n"
    writer.write(
        request(
            sim,
            "POST /api2/json/nodes/pve1/qemu/9000/status/start HTTP/1.1",
            "Content-Type: application/x-www-form-urlencoded",
            "Transfer-Encoding: chunked",
            body=chunks,
        )
    )
    (status, _), body = await read_response(reader)
    writer.close()
    assert status == b"HTTP/1.1 400 Parameter verification failed.\r\n"
    assert "bogus" in json.loads(body)["errors"]


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


async def test_malformed_requests_drop_the_connection_without_a_reply(sim: Simulator) -> None:
    for raw in (
        b"NOT A REQUEST\r\n\r\n",
        b"GET /api2/json/version HTTP/1.1\r\n\r\n",  # no Host
        request(sim, "GET /api2/json/version HTTP/1.1", "Bad Header: x"),
        request(sim, "POST /api2/json/pools HTTP/1.1", "Content-Length: nope"),
        request(sim, "GET /api2/json/version HTTP/1.1", "Transfer-Encoding: gzip"),
        b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    ):
        reader, writer = await open_raw(sim)
        writer.write(raw)
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()
