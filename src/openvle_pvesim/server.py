"""HTTP/1.1 over asyncio streams with h11, so the reason phrase can carry PVE's message.

Keep-alive, optional TLS, gzip or deflate (level 1) when the client accepts it and the
body exceeds 1024 bytes, PVE's headers (`Server: pve-api-daemon/3.0`, no-cache). Connection-level
faults: `hang` keeps the connection open without answering until the client gives up,
`reset` aborts it with an RST and no reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import socket
import ssl
import struct
import zlib
from email.utils import formatdate

import h11

from openvle_pvesim.app import Reply, SimulatorApp
from openvle_pvesim.faults import HttpFault

log = logging.getLogger(__name__)
MAX_BODY = 4 * 1024 * 1024
GZIP_MIN = 1024
READ_SIZE = 65536


class SimulatorServer:
    """An asyncio server bound to `host:port` that feeds requests to a SimulatorApp."""

    def __init__(self, app: SimulatorApp, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, ssl=self.ssl_context, reuse_address=True
        )
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop open connections (hung ones included)."""
        if self._server is not None:
            self._server.close()
        for task, writer in list(self._connections.items()):
            # abort, not close: a TLS close would wait (up to 30 s) for the idle client
            writer.transport.abort()
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self._connection(reader, writer)
        except (ConnectionError, ssl.SSLError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # stop() cancels open connections; ending quietly keeps asyncio's
            # connection_made callback from reporting the cancellation as an error.
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            request = await _next_event(conn, reader)
            if not isinstance(request, h11.Request):
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
            body = await _read_body(conn, reader)
            reply = await self.app.handle(
                request.method.decode("ascii"), request.target.decode("latin-1"), headers, body
            )
            if isinstance(reply, HttpFault):
                await _play_fault(reply, reader, writer)
                return
            await _send(conn, writer, reply, _encoding(headers.get("accept-encoding", "")))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Event | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(READ_SIZE))
            continue
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return None
        assert not isinstance(event, type)
        return event


async def _read_body(conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                raise ConnectionError("request body too large")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) or event is None:
            return b"".join(chunks)


def _encoding(accept: str) -> str | None:
    """gzip if the client takes it, else deflate, else none (as pve-http-server)."""
    offered = {item.split(";")[0].strip().lower() for item in accept.split(",")}
    return next((enc for enc in ("gzip", "deflate") if enc in offered), None)


def _headers(body: bytes, encoding: str | None) -> list[tuple[str, str]]:
    now = formatdate(usegmt=True)
    headers = [
        ("Cache-Control", "max-age=0"),
        ("Pragma", "no-cache"),
        ("Expires", now),
        ("Date", now),
        ("Server", "pve-api-daemon/3.0"),
        ("Content-Length", str(len(body))),
    ]
    if body:
        headers.append(("Content-Type", "application/json;charset=UTF-8"))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    return headers


def reason_bytes(reason: str) -> bytes:
    """The reason phrase on the wire: one line, control characters replaced."""
    text = "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in reason.split("\n")[0])
    return text.encode("utf-8")


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, accepted: str | None
) -> None:
    body = reply.body
    encoding = accepted if len(body) > GZIP_MIN else None
    if encoding == "gzip":
        body = gzip.compress(body, compresslevel=1, mtime=0)
    elif encoding == "deflate":
        body = zlib.compress(body, 1)
    response = h11.Response(
        status_code=reply.status,
        reason=reason_bytes(reply.reason),
        headers=_headers(body, encoding),
    )
    writer.write(conn.send(response) or b"")
    if body:
        writer.write(conn.send(h11.Data(data=body)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()


async def _play_fault(
    fault: HttpFault, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    if fault.kind == "hang":
        while await reader.read(READ_SIZE):
            pass
        return
    sock = writer.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
