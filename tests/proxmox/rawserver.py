"""A scripted TCP server for transport tests: each connection runs the test's handler."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    """Where the server listens and what it saw."""

    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)  # each request's head and body
    closed_by_client: int = 0  # connections the client closed (EOF seen by the server)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request (head and Content-Length body), or None when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def reply(status: str = "200 OK", body: bytes = b'{"data":1}', *headers: str) -> bytes:
    """A response with Content-Length and any extra header lines."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def answer_each(*responses: bytes) -> Handler:
    """A handler that reads a request, then writes the next response, per request."""

    async def handler(
        server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for response in responses:
            if await server.read_request(reader) is None:
                return
            writer.write(response)
        await reader.read()  # hold the connection open until the client closes it

    return handler


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[RawServer]:
    """Listen on a free local port; run `handler` for each connection."""
    state = RawServer(url="")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.writers.append(writer)
        try:
            await handler(state, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if reader.at_eof():
                state.closed_by_client += 1
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        for writer in state.writers:
            writer.transport.abort()
        await server.wait_closed()
