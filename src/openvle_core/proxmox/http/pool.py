"""`KeepAliveTransport`: the httpx transport the Proxmox client sends through by default.

httpx's own transport (httpcore 1.0) spends most of a small request's CPU in its pool:
every request walks all connections and asks each socket, through anyio, whether it
has become readable. Proxmox API calls are small JSON exchanges with one origin, so this
transport keeps only what they need, and cuts the client's CPU per request about
threefold (docs/explanation/benchmarks.md, "Proxmox client"):

- idle connections per origin (scheme, host, port), reused last-in first-out and closed
  once idle longer than `keepalive_expiry` (3 s, under pveproxy's 5 s); a connection the
  server has closed is seen closed by its Protocol (`http.connection.Connection`), never reused;
- connections opened with Happy Eyeballs (`dial.open_tcp`) on asyncio and uvloop alike;
- at most `max_connections` requests in flight; one that waits longer than the pool
  timeout for a slot raises `httpx.PoolTimeout` (nothing was sent);
- connecting raises `httpx.ConnectTimeout` or `httpx.ConnectError` (chained to the
  OSError or `ssl.SSLCertVerificationError`); before that nothing is on the wire;
- a request that fails or is cancelled half-way closes its connection.

Redirects, cookies, auth, content decoding (gzip, deflate) and proxies from the
environment stay in `httpx.AsyncClient`; `PVE_HTTP_TRANSPORT=httpcore` switches back to
httpx's own transport should this one ever misbehave.

`request` sends without the client's layers (URL merging, cookies, auth, redirects,
event hooks): about a quarter of a small request's CPU. The Proxmox client uses it when
nothing of those layers applies (`transport.direct_transport`): token auth in a header,
no cookies, no redirects followed (httpx's default), no proxy from the environment.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import httpx

from openvle_core.proxmox.http.connection import Connection, Head
from openvle_core.proxmox.http.dial import open_tcp
from openvle_core.proxmox.http.message import (
    FieldsCache,
    Origin,
    Prepared,
    Reply,
    prepare,
    prepared_by_httpx,
    reply_of,
)

KEEPALIVE_EXPIRY = 3.0
"""Seconds an idle connection is kept: pveproxy drops one idle for 5 s (AnyEvent.pm
`timeout`), and a request sent as it does so fails without proof it was not processed."""


def client_ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The context to connect with: the given one, system CAs (True), or none checked."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive for `httpx.AsyncClient(transport=...)`."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 20,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
    ) -> None:
        self._ssl = client_ssl_context(verify)
        self._slots = asyncio.Semaphore(max_connections)
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, list[Connection]] = {}
        self._closed = False
        self._fields = FieldsCache()  # the header lines of `request`, checked once
        self.connections_opened = 0
        """Connections made so far (keep-alive working means this stays small)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        if self._slots.locked():
            await self._wait_for_slot(request, timeouts.get("pool"))
        else:
            await self._slots.acquire()  # free slot: returns at once
        try:
            return await self._send(request, timeouts)
        finally:
            self._slots.release()

    async def _send(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        prepared = await prepared_by_httpx(request)
        head, content = await self._roundtrip(prepared, timeouts, request)
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )

    async def _roundtrip(
        self,
        prepared: Prepared,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None,
    ) -> tuple[Head, bytes]:
        """Send a prepared request on an idle or new connection of its origin; the
        response's head and body (not content-decoded). The connection is kept if reusable."""
        origin = prepared.origin
        connection = self._take_idle(origin) or await self._connect(
            origin, request, timeouts.get("connect")
        )
        try:
            head, content, reusable = await connection.roundtrip(
                prepared.message, prepared.head_only, timeouts.get("read"), request
            )
        except BaseException:
            connection.close()
            raise
        if reusable and not self._closed:
            self._put_idle(origin, connection)
        else:
            connection.close()
        return head, content

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: httpx.Headers,
        timeouts: Mapping[str, float | None],
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request and read its whole response, content-decoded, without
        `httpx.AsyncClient` and, for the requests the Proxmox client makes (a plain URL,
        string parameters), without `httpx.Request` and `httpx.Response` either: the same
        bytes leave as the client would send (`prepare`). `headers` must hold the
        client's defaults. Raises httpx's exceptions as `handle_async_request` does;
        `RuntimeError` once closed, as the client does."""
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        prepared, request = prepare(method, url, headers, params, data, self._fields), None
        if prepared is None:  # beyond the plain case: httpx makes the bytes
            request = httpx.Request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                extensions={"timeout": timeouts},
            )
            prepared = await prepared_by_httpx(request)
        if self._slots.locked():
            await self._wait_for_slot(request, timeouts.get("pool"))
        else:
            await self._slots.acquire()
        try:
            head, content = await self._roundtrip(prepared, timeouts, request)
        finally:
            self._slots.release()
        return await reply_of(head, content)

    async def _wait_for_slot(
        self, request: httpx.Request | None, pool_timeout: float | None
    ) -> None:
        try:
            async with asyncio.timeout(pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection slot in time", request=request) from None

    async def _connect(
        self, origin: Origin, request: httpx.Request | None, connect_timeout: float | None
    ) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(connect_timeout):
                sock = await open_tcp(host, port)
                try:
                    _, connection = await loop.create_connection(
                        Connection, sock=sock, ssl=tls, server_hostname=host if tls else None
                    )
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"connecting to {host}:{port} timed out", request=request
            ) from exc
        except OSError as exc:
            raise httpx.ConnectError(
                f"connecting to {host}:{port}: {exc}", request=request
            ) from exc
        self.connections_opened += 1
        return connection

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_kept = asyncio.get_running_loop().time() - self._expiry
        while idle:
            connection = idle.pop()
            if connection.reusable and connection.idle_since > oldest_kept:
                return connection
            connection.close()
        return None

    def _put_idle(self, origin: Origin, connection: Connection) -> None:
        now = asyncio.get_running_loop().time()
        connection.idle_since = now
        idle = self._idle.setdefault(origin, [])
        while idle and (idle[0].idle_since <= now - self._expiry or not idle[0].reusable):
            idle.pop(0).close()  # oldest first: they are the ones that expire
        idle.append(connection)

    @property
    def idle_connections(self) -> int:
        """Idle connections still open and fit for reuse."""
        return sum(connection.reusable for idle in self._idle.values() for connection in idle)

    async def aclose(self) -> None:
        """Close idle connections; ones in use close when their request ends."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
