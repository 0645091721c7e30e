"""One HTTP/1.1 client connection: write a request, read its response (RFC 9112).

`Connection` is an asyncio Protocol, so the event loop tells it when the peer closes and
an idle connection's fitness for reuse is a flag check, not a system call. It writes
a request head and body in one call (Proxmox API bodies are small forms) and reads the
response whole: framed by Content-Length, chunked coding, or the connection's close
(RFC 9112 section 6.3), with 1xx interim responses skipped. Failures are raised as the
httpx exceptions httpcore raises for the same cases, so callers cannot tell the
transports apart:

- `httpx.ReadTimeout` when no byte arrives within the read timeout;
- `httpx.ReadError` when the connection is reset or lost with an error;
- `httpx.RemoteProtocolError` for a malformed, oversized or truncated response, and for
  a peer that closes without answering (a keep-alive connection it dropped while idle);
- `httpx.LocalProtocolError` for a request that cannot be written (CR or LF in a header).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import NoReturn, cast

import httpx

MAX_HEAD = 64 * 1024
"""Largest response head (status line and headers) accepted, bytes."""
_MAX_LINE = 4096
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_LENGTH = re.compile(rb"[0-9]{1,18}")
_STATUS = re.compile(rb"[1-5][0-9][0-9]")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Header lines that need no unfolding or closer look: name, colon, a value without CR
# (but the line's end), LF or NUL, each line ended by (CR)LF but the last.
_PLAIN_FIELDS = re.compile(
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\0]*\r?\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\0]*\r?"
)
_NO_BODY_STATUS = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Head:
    """A parsed response head."""

    version: bytes
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    length: int | None  # Content-Length, when framed by it
    chunked: bool
    close: bool  # the server closes after this response (or it is HTTP/1.0)


def field_ok(name: bytes, value: bytes) -> bool:
    """A request header that can be written as it is: a token name, and a value without
    CR, LF or NUL (nothing can be smuggled into the head)."""
    return bool(_TOKEN.fullmatch(name)) and not (b"\r" in value or b"\n" in value or b"\0" in value)


def token_ok(method: bytes) -> bool:
    """A method that can be written in a request line."""
    return bool(_TOKEN.fullmatch(method))


def request_head(request: httpx.Request, body_length: int) -> bytes:
    """The request line and headers, checked so nothing can be smuggled into them."""
    method = request.method.encode("ascii")
    target = request.url.raw_path
    if not token_ok(method) or any(c in target for c in b" \r\n\0"):
        raise httpx.LocalProtocolError(
            f"cannot write request line for {request.method} {target!r}", request=request
        )
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    chunked = False
    for name, value in request.headers.raw:
        if not field_ok(name, value):
            raise httpx.LocalProtocolError(f"invalid request header {name!r}", request=request)
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            chunked = True  # the body was read whole: send it with its length instead
            continue
        parts += (name, b": ", value, b"\r\n")
    if chunked:
        parts += (b"Content-Length: ", str(body_length).encode(), b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def parse_head(raw: bytes, request: httpx.Request | None) -> Head:
    """Parse a status line and header fields; raise RemoteProtocolError if malformed.

    Lenient where RFC 9112 asks a client to be (bare LF line ends, folded header lines
    unfolded), strict where a wrong guess would misframe the body.
    """
    lines = [line.removesuffix(b"\r") for line in raw.split(b"\n")]
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or not _STATUS.fullmatch(code):
        raise httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}", request=request)
    fields = raw.partition(b"\n")[2]
    if not fields or _PLAIN_FIELDS.fullmatch(fields):  # the usual head: one check for all
        split = [line.partition(b":") for line in lines[1:]]
        headers = [(name, value.strip(b" \t")) for name, _, value in split]
        return _framing(version, int(code), reason, headers, request)
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:  # obs-fold: continues the previous value
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or b"\r" in value or b"\0" in value:
            raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}", request=request)
        headers.append((name, value.strip(b" \t")))
    return _framing(version, int(code), reason, headers, request)


def _framing(
    version: bytes,
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    request: httpx.Request | None,
) -> Head:
    """How the body is delimited and whether the connection stays open (RFC 9112 6.3)."""
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    connection: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.update(part.strip() for part in value.split(b","))
        elif lowered == b"transfer-encoding":
            codings += (part.strip().lower() for part in value.split(b","))
        elif lowered == b"connection":
            connection += (part.strip().lower() for part in value.split(b","))
    if codings.count(b"chunked") > 1:
        raise httpx.RemoteProtocolError("chunked coding applied twice", request=request)
    length: int | None = None
    if lengths and not codings:
        value = next(iter(lengths))
        if len(lengths) != 1 or not _LENGTH.fullmatch(value):
            raise httpx.RemoteProtocolError(
                f"invalid Content-Length {sorted(lengths)!r}", request=request
            )
        length = int(value)
    chunked = bool(codings) and codings[-1] == b"chunked"  # else: the body runs to close
    close = version == b"HTTP/1.0" or b"close" in connection or bool(codings and lengths)
    return Head(version, status, reason, headers, length, chunked, close)


class Connection(asyncio.Protocol):
    """A client connection; `roundtrip()` sends one request and returns its response."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[bool] | None = None
        self._eof = False
        self._error: Exception | None = None
        self.idle_since = 0.0
        self._request: httpx.Request | None = None  # the exchange in progress, for errors
        self._read_timeout: float | None = None  # seconds without a byte before ReadTimeout

    # asyncio.Protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake(True)

    def eof_received(self) -> bool:
        self._eof = True
        self._wake(True)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake(True)

    def _wake(self, value: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    @property
    def reusable(self) -> bool:
        """Open, nothing unread, and the peer has not closed its side."""
        transport = self._transport
        return (
            transport is not None
            and not transport.is_closing()
            and not self._eof
            and not self._buffer
        )

    def close(self) -> None:
        """Close at once, without waiting for a TLS close_notify (as httpcore does).

        A polite TLS close waits up to 30 s for the server's reply in the background,
        holding the socket past `aclose()` and beyond `max_connections`.
        """
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    async def roundtrip(
        self,
        message: bytes,
        head_only: bool,
        read_timeout: float | None,
        request: httpx.Request | None = None,
    ) -> tuple[Head, bytes, bool]:
        """Write `message` (a checked request head and its body), read the response: its
        head, its body (as sent: not content-decoded) and whether the connection is
        reusable. `request` only names the exchange in the httpx errors raised."""
        assert self._transport is not None
        self._request, self._read_timeout = request, read_timeout
        self._transport.write(message)
        while True:
            head = parse_head(await self._read_head(), self._request)
            if head.status >= 200:
                break
            if head.status == 101:
                raise httpx.RemoteProtocolError(
                    "unexpected 101 Switching Protocols", request=self._request
                )
        framed = True
        if head_only or head.status in _NO_BODY_STATUS:
            content = b""
        elif head.chunked:
            content = await self._read_chunked()
        elif head.length is not None:
            content = await self._read_exactly(head.length)
        else:
            content, framed = await self._read_to_eof(), False
        return head, content, framed and not head.close and self.reusable

    async def _more(self, *, started: bool, part: str = "message body") -> None:
        """Wait for more bytes; raise if the peer closed or the read timed out."""
        if self._eof:
            self._raise_closed(started=started, part=part)
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._waiter = waiter
        timer = (
            None
            if self._read_timeout is None
            else self._loop.call_later(self._read_timeout, self._wake, False)
        )
        try:
            arrived = await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if not arrived:
            raise httpx.ReadTimeout("timed out waiting for the response", request=self._request)
        if self._eof and not self._buffer:
            self._raise_closed(started=started, part=part)

    def _raise_closed(self, *, started: bool, part: str) -> NoReturn:
        if self._error is not None:
            raise httpx.ReadError(f"connection lost: {self._error!r}", request=self._request) from (
                self._error
            )
        if not started:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=self._request
            )
        raise httpx.RemoteProtocolError(
            f"peer closed connection without sending complete {part}", request=self._request
        )

    async def _read_head(self) -> bytes:
        searched = 0
        started = bool(self._buffer)
        while (end := _HEAD_END.search(self._buffer, searched)) is None:
            if len(self._buffer) > MAX_HEAD:
                raise httpx.RemoteProtocolError("response head over 64 KiB", request=self._request)
            searched = max(0, len(self._buffer) - 3)
            await self._more(started=started, part="response head")
            started = True
        if end.start() > MAX_HEAD:
            raise httpx.RemoteProtocolError("response head over 64 KiB", request=self._request)
        head = bytes(self._buffer[: end.start()])
        del self._buffer[: end.end()]
        return head

    async def _read_line(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > _MAX_LINE:
                raise httpx.RemoteProtocolError("chunk line too long", request=self._request)
            await self._more(started=True)
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        del self._buffer[: end + 1]
        return line

    async def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._more(started=True)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_field = (await self._read_line()).partition(b";")[0].strip()
            if not _HEX.fullmatch(size_field):
                raise httpx.RemoteProtocolError(
                    f"bad chunk size {size_field[:20]!r}", request=self._request
                )
            size = int(size_field, 16)
            if size == 0:
                while await self._read_line():
                    pass  # trailer fields: not used by any Proxmox response
                return b"".join(chunks)
            chunks.append(await self._read_exactly(size))
            if await self._read_line():
                raise httpx.RemoteProtocolError("chunk not followed by CRLF", request=self._request)

    async def _read_to_eof(self) -> bytes:
        while not self._eof:
            try:
                await self._more(started=True)
            except httpx.RemoteProtocolError:
                break  # a clean close is this body's end
        data = bytes(self._buffer)
        self._buffer.clear()
        return data
