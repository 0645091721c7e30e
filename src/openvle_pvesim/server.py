"""HTTP/1.1 over asyncio streams (`http1`), so the reason phrase can carry PVE's message.

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

from openvle_pvesim.app import Reply, SimulatorApp
from openvle_pvesim.faults import HttpFault
from openvle_pvesim.http1 import (
    MAX_HEAD,
    ProtocolError,
    RequestReader,
    encode_response,
    http_date,
)

log = logging.getLogger(__name__)
GZIP_MIN = 1024
READ_SIZE = 65536


class SimulatorServer:
    """An asyncio server bound to `host:port` that feeds requests to a SimulatorApp."""

    def __init__(self, app: SimulatorApp, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.connections_accepted = 0

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, ssl=self.ssl_context, reuse_address=True, limit=MAX_HEAD
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
        self.connections_accepted += 1
        try:
            await self._connection(reader, writer)
        except ProtocolError as exc:
            if exc.status:
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    writer.write(refusal(exc))
                    await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
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
        requests = RequestReader(reader)
        while True:
            request = await requests.next()
            if request is None:
                return
            reply = await self.app.handle(
                request.method, request.target, request.headers, request.body
            )
            if isinstance(reply, HttpFault):
                await _play_fault(reply, reader, writer)
                return
            accepted = _encoding(request.headers.get("accept-encoding", ""))
            writer.write(_response(reply, accepted, request.keep_alive, request.method == "HEAD"))
            await writer.drain()
            if not request.keep_alive:
                return


def refusal(exc: ProtocolError) -> bytes:
    """AnyEvent.pm's `error()` for a request it will not serve: the text as body, then close."""
    body = exc.reason.encode()
    headers = [("Date", http_date()), ("Server", "pve-api-daemon/3.0")]
    headers.append(("Content-Length", str(len(body))))
    return encode_response(exc.status, body, headers, body, keep_alive=False)


def _encoding(accept: str) -> str | None:
    """gzip if the client takes it, else deflate, else none (as pve-http-server)."""
    if not accept:
        return None
    offered = {item.split(";")[0].strip().lower() for item in accept.split(",")}
    return next((enc for enc in ("gzip", "deflate") if enc in offered), None)


def _headers(body: bytes, encoding: str | None) -> list[tuple[str, str]]:
    now = http_date()
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
    if reason.isprintable():
        return reason.encode("utf-8")
    text = "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in reason.split("\n")[0])
    return text.encode("utf-8")


def _response(reply: Reply, accepted: str | None, keep_alive: bool, head_only: bool) -> bytes:
    """The reply on the wire, compressed when accepted and worth it; no body for HEAD."""
    body = reply.body
    encoding = accepted if len(body) > GZIP_MIN else None
    if encoding == "gzip":
        body = gzip.compress(body, compresslevel=1, mtime=0)
    elif encoding == "deflate":
        body = zlib.compress(body, 1)
    headers = _headers(body, encoding)
    payload = b"" if head_only else body
    return encode_response(reply.status, reason_bytes(reply.reason), headers, payload, keep_alive)


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
