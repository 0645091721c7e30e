"""A TCP proxy the test owns, to cut a real service (MariaDB, Redis) without stopping it.

`async with tcp_proxy(host, port) as proxy:` listens on a free local port and relays
every connection to the service. `await proxy.pause()` is the outage: the listening
socket is closed (new connections are refused) and every relayed connection is
aborted on both sides (the client sees a reset). `await proxy.resume()` listens on the
same port again. The machine's service keeps running for everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

CHUNK = 65536


class TcpProxy:
    """Relays 127.0.0.1:`port` to `target`; can be paused (cut) and resumed."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections accepted so far (all of them, over every pause)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def paused(self) -> bool:
        """True while new connections are refused."""
        return self._server is None

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a pause)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def pause(self) -> None:
        """The outage: refuse new connections and reset every open one."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()
        await asyncio.gather(*self._links, return_exceptions=True)  # each sees its reset

    async def resume(self) -> None:
        """The service is back: accept connections on the same port again."""
        await self.start()

    async def close(self) -> None:
        """Stop for good."""
        await self.pause()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self.target)
            self._writers.add(upstream)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except OSError:  # refused upstream, or reset by a pause
            pass
        finally:
            self._links.discard(task)
            for end in (writer, upstream):
                if end is not None:
                    self._writers.discard(end)
                    _abort(end)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the EOF on (half-close)."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (SO_LINGER 0), as a host that went away does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()


@contextlib.asynccontextmanager
async def tcp_proxy(host: str, port: int) -> AsyncIterator[TcpProxy]:
    """A started proxy to `host:port`, closed at the end."""
    proxy = TcpProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def split_host(hostport: str) -> tuple[str, int]:
    """("127.0.0.1", 3306) from "root@127.0.0.1:3306" or "127.0.0.1:6379"."""
    hostpart = hostport.rpartition("@")[2]
    host, _, port = hostpart.partition(":")
    return host, int(port)


@contextlib.asynccontextmanager
async def mariadb_behind_proxy(
    mariadb_database_factory: Any, label: str
) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A fresh MariaDB database migrated to head, reached through a proxy the test owns:
    (the proxy, the URL through it). The process's database tracker starts as up,
    whatever an earlier test left."""
    from sqlalchemy.engine import make_url

    from openvle_core.availability import DATABASE
    from openvle_core.db.migrate import upgrade_to_head
    from tests.support.services import MARIADB_HOST

    direct = await mariadb_database_factory(label)
    await upgrade_to_head(direct)
    DATABASE.restored()
    async with tcp_proxy(*split_host(MARIADB_HOST)) as proxy:
        url = make_url(direct).set(host="127.0.0.1", port=proxy.port)
        yield proxy, url.render_as_string(hide_password=False)
