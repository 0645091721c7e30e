"""KeepAliveTransport over real sockets: framing, keep-alive, errors, pool limits."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import uvloop

from openvle_core.proxmox import ProxmoxClient, build_http_client
from openvle_core.proxmox.http.pool import KeepAliveTransport
from openvle_core.settings import ConfigError, load_settings
from openvle_pvesim import Simulator, run_simulator
from tests.proxmox.rawserver import RawServer, answer_each, reply, reset, serve
from tests.proxmox.simclient import settings_for


@asynccontextmanager
async def client_for(
    server: RawServer,
    *,
    read_timeout: float = 5.0,
    pool: float = 5.0,
    max_connections: int = 20,
    keepalive_expiry: float = 5.0,
) -> AsyncIterator[tuple[httpx.AsyncClient, KeepAliveTransport]]:
    """An httpx client on `server` through a KeepAliveTransport."""
    transport = KeepAliveTransport(
        max_connections=max_connections, keepalive_expiry=keepalive_expiry
    )
    async with httpx.AsyncClient(
        transport=transport, base_url=server.url, timeout=httpx.Timeout(read_timeout, pool=pool)
    ) as http:
        yield http, transport


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) for the event loop to make `condition` true."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110  # state the loop changes; no event exists
            await asyncio.sleep(0.005)


async def test_keep_alive_reuses_one_connection_and_keeps_the_reason_phrase() -> None:
    responses = [reply(), reply("500 VM 100 not running", b'{"data":null}'), reply()]
    async with serve(answer_each(*responses)) as server, client_for(server) as (http, transport):
        first = await http.get("/a")
        failed = await http.get("/b")
        third = await http.post("/c", data={"name": "x y"})
    assert (first.json(), failed.status_code, third.status_code) == ({"data": 1}, 500, 200)
    assert failed.reason_phrase == "VM 100 not running"
    assert server.connections == 1
    assert transport.connections_opened == 1
    assert server.requests[2].endswith(b"\r\n\r\nname=x+y")
    assert b"Content-Length: 8\r\n" in server.requests[2]


async def test_chunked_body_with_extensions_and_trailers() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;ext=1\r\n{"dat\r\n6\r\na":42}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    async with serve(answer_each(chunked, reply())) as server, client_for(server) as (http, _):
        response = await http.get("/")
        await http.get("/again")
    assert response.json() == {"data": 42}
    assert server.connections == 1


async def test_body_to_close_and_connection_close_are_not_reused() -> None:
    to_close = b"HTTP/1.1 200 OK\r\n\r\nall of it"
    closing = reply("200 OK", b"{}", "Connection: close")
    http10 = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"

    async def one_each(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write([to_close, closing, http10][server.connections - 1])
        if server.connections == 1:
            writer.close()

    async with serve(one_each) as server, client_for(server) as (http, transport):
        bodies = [(await http.get("/")).content for _ in range(3)]
        assert transport.idle_connections == 0
    assert bodies == [b"all of it", b"{}", b"{}"]
    assert server.connections == 3


async def test_head_204_and_interim_responses_carry_no_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  # length of the GET, no body
    head_chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n" + reply()
    async with (
        serve(answer_each(head, head_chunked, no_content, not_modified, interim)) as server,
        client_for(server) as (http, _),
    ):
        codes = [
            (await http.head("/")).status_code,
            (await http.head("/")).status_code,
            (await http.delete("/")).status_code,
            (await http.get("/")).status_code,
            (await http.get("/")).json(),
        ]
    assert codes == [200, 200, 204, 304, {"data": 1}]
    assert server.connections == 1


async def test_gzip_is_decoded_by_httpx() -> None:
    body = gzip.compress(b'{"data":"zipped"}')
    zipped = reply("200 OK", body, "Content-Encoding: gzip")
    async with serve(answer_each(zipped)) as server, client_for(server) as (http, _):
        assert (await http.get("/")).json() == {"data": "zipped"}
    assert b"accept-encoding: gzip" in server.requests[0].lower()


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 099 Early\r\n\r\n" + reply(), "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "twice"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX\r\n0\r\n\r\n", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000, "over 64 KiB"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", "over 64 KiB"),
    ],
)
async def test_malformed_responses_raise_and_the_connection_is_dropped(
    response: bytes, message: str
) -> None:
    """The server keeps the broken connection open: the client must not reuse it."""

    async def broken_first(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(response if server.connections == 1 else reply())
        await reader.read()

    async with serve(broken_first) as server, client_for(server) as (http, _):
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await http.get("/")
        assert (await http.get("/")).json() == {"data": 1}
        await until(lambda: server.closed_by_client == 1)
    assert server.connections == 2


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "complete message body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}", "complete message"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "complete response head"),
        (b"", "without sending a response"),
    ],
)
async def test_truncated_responses_raise_remote_protocol_error(
    response: bytes, message: str
) -> None:
    async def once(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(response)
        await writer.drain()
        writer.close()

    async with serve(once) as server, client_for(server) as (http, _):
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await http.get("/")


async def test_lenient_where_rfc_9112_asks_a_client_to_be() -> None:
    """Bare LF line ends are accepted and folded header lines unfolded (RFC 9112 5.2)."""
    bare_lf = b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Folded: a\n  b\n\n{}"
    chunked_lf = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\n{}\n0\n\n"
    async with (
        serve(answer_each(bare_lf, chunked_lf)) as server,
        client_for(server) as (http, _),
    ):
        first = await http.get("/")
        second = await http.get("/")
    assert (first.content, first.headers["x-folded"], second.content) == (b"{}", "a b", b"{}")
    assert server.connections == 1


async def test_reset_mid_body_is_a_read_error() -> None:
    async def cut(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"data":')
        await writer.drain()
        await asyncio.sleep(0.05)
        reset(writer)

    async with serve(cut) as server, client_for(server) as (http, _):
        with pytest.raises(httpx.ReadError, match="connection lost"):
            await http.get("/")


async def test_read_timeout_closes_the_connection_and_frees_the_slot() -> None:
    async def silent_first(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        if server.connections > 1:
            writer.write(reply())
        await reader.read()

    async with (
        serve(silent_first) as server,
        client_for(server, read_timeout=0.2, max_connections=1) as (http, transport),
    ):
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/")
        assert (await http.get("/")).json() == {"data": 1}
        await until(lambda: server.closed_by_client == 1)
    assert transport.connections_opened == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def one_then_close(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(reply())  # keep-alive response, then the server drops it anyway
        await writer.drain()
        writer.close()

    async with serve(one_then_close) as server, client_for(server) as (http, transport):
        await http.get("/")
        await until(lambda: transport.idle_connections == 0)
        assert (await http.get("/")).json() == {"data": 1}
    assert transport.connections_opened == 2


async def test_idle_connections_expire() -> None:
    async with (
        serve(answer_each(reply(), reply())) as server,
        client_for(server, keepalive_expiry=0.05) as (http, transport),
    ):
        await http.get("/")
        await asyncio.sleep(0.1)
        await http.get("/")
        await until(lambda: server.closed_by_client == 1)  # the expired one was closed
    assert transport.connections_opened == 2


async def test_pool_timeout_when_every_slot_is_busy_and_cancel_frees_it() -> None:
    async def hold_first(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while await server.read_request(reader) is not None:
            if server.connections > 1:
                writer.write(reply())

    async with (
        serve(hold_first) as server,
        client_for(server, max_connections=1, pool=0.1) as (http, _),
    ):
        stuck = asyncio.create_task(http.get("/slow"))
        await until(lambda: len(server.requests) == 1)
        with pytest.raises(httpx.PoolTimeout):
            await http.get("/queued")
        assert len(server.requests) == 1  # nothing of the timed-out request was sent
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert (await http.get("/after")).json() == {"data": 1}
        await until(lambda: server.closed_by_client == 1)  # the cancelled one was closed


async def test_connect_refused_is_a_connect_error() -> None:
    with socket.socket() as bound:  # bound, not listening: the port refuses connections
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/"
        async with httpx.AsyncClient(transport=KeepAliveTransport()) as http:
            with pytest.raises(httpx.ConnectError) as caught:
                await http.get(url)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_tls_handshake_that_never_completes_is_a_connect_timeout() -> None:
    received: list[bytes] = []

    async def mute(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        received.append(await reader.read(65536))  # the ClientHello, never answered
        await reader.read()

    async with serve(mute) as server:
        transport = KeepAliveTransport(verify=False)
        https = server.url.replace("http://", "https://")
        async with httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(5, connect=0.2)
        ) as http:
            with pytest.raises(httpx.ConnectTimeout):
                await http.get(https)
    assert received[0][:1] == b"\x16"  # a TLS handshake record arrived, then nothing else
    assert b"GET" not in received[0]


async def test_tls_against_an_untrusted_certificate_is_a_connect_error() -> None:
    async with run_simulator(time_scale=0.0) as sim:
        transport = KeepAliveTransport(verify=ssl.create_default_context())
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(httpx.ConnectError) as caught:
                await http.get(f"https://{sim.hostname}/api2/json/version")
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


async def test_header_injection_is_refused_before_anything_is_sent() -> None:
    async with serve(answer_each(reply())) as server, client_for(server) as (http, _):
        with pytest.raises(httpx.LocalProtocolError, match="invalid request header"):
            await http.get("/", headers={"X-Token": "a\r\nX-Evil: 1"})
        assert (await http.get("/")).status_code == 200
    assert len(server.requests) == 1
    assert b"X-Evil" not in server.requests[0]


async def test_a_streamed_request_body_is_sent_with_its_length() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"vmid=100&"
        yield b"name=a"

    async with serve(answer_each(reply())) as server, client_for(server) as (http, _):
        await http.post("/", content=parts())
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert body == b"vmid=100&name=a"
    assert b"Content-Length: 15" in head
    assert b"transfer-encoding" not in head.lower()


async def test_aclose_closes_idle_connections() -> None:
    async with serve(answer_each(reply())) as server:
        async with client_for(server) as (http, transport):
            await http.get("/")
            assert transport.idle_connections == 1
        await until(lambda: server.closed_by_client == 1)


def test_runs_on_uvloop() -> None:
    """uvicorn runs the API on uvloop, whose transports are not asyncio.Transport subclasses."""

    async def main() -> tuple[object, int]:
        async with run_simulator(time_scale=0.0) as sim:
            transport = KeepAliveTransport(verify=False)
            async with httpx.AsyncClient(transport=transport) as http:
                url = f"https://{sim.hostname}/api2/json/version"
                statuses = [(await http.get(url)).status_code for _ in range(3)]
                return statuses, transport.connections_opened

    assert uvloop.run(main()) == ([401, 401, 401], 1)


@pytest.mark.parametrize("verify", [True, False], ids=["tls-verified", "tls-unverified"])
async def test_the_client_keeps_connections_alive_on_the_simulator(
    sim: Simulator, verify: bool
) -> None:
    """200 reads at concurrency 10 through build_http_client open at most 10 connections."""
    settings = settings_for(sim, verify=None if verify else False)
    before = sim.connections_accepted
    async with build_http_client(settings) as http:
        assert isinstance(http._transport, KeepAliveTransport)  # read, not patched
        client = ProxmoxClient(http, settings)
        await client.cluster_resources("vm")

        async def reader() -> list[str]:
            return [(await client.vm_status("pve1", 9000)).status for _ in range(20)]

        results = await asyncio.gather(*(reader() for _ in range(10)))
    assert {status for statuses in results for status in statuses} == {"stopped"}
    assert sim.connections_accepted - before <= 10


async def test_pve_http_transport_httpcore_switches_back_to_httpx_s_own(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PVE_HTTP_TRANSPORT", "httpcore")
    assert load_settings(None).proxmox.http_transport == "httpcore"
    settings = settings_for(sim).model_copy(update={"http_transport": "httpcore"})
    async with build_http_client(settings) as http:
        assert isinstance(http._transport, httpx.AsyncHTTPTransport)  # read, not patched
        client = ProxmoxClient(http, settings)
        version = await client.version()
    assert version.release == sim.version
    assert sim.connections_accepted >= 1
    monkeypatch.setenv("PVE_HTTP_TRANSPORT", "aiohttp")
    with pytest.raises(ConfigError, match="PVE_HTTP_TRANSPORT"):
        load_settings(None)
