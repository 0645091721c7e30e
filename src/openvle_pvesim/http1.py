"""The HTTP/1.1 server side the simulator needs, parsed straight off an asyncio stream.

Request line and headers (at most 64 KiB, CRLF line ends), a body by Content-Length or
chunked transfer coding (at most 4 MiB), keep-alive as h11 decides it (HTTP/1.1 without
`Connection: close`; HTTP/1.0 always closes), and one pre-assembled write per reply.
Anything malformed raises `ProtocolError` and the server drops the connection without a
reply, as it did with h11. Hand-rolled because h11's per-event validation was a large
share of the simulator's CPU per request.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from email.utils import formatdate

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
_REQUEST_LINE = re.compile(
    r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e\x80-\xff]+) HTTP/1\.([01])$"
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing; the connection is dropped without a reply."""


@dataclass(slots=True)
class HttpRequest:
    """One parsed request: header names lower-cased (the last duplicate wins)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """The next request on the connection, or None when the peer closed between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError("request head too large") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    start = _REQUEST_LINE.match(lines[0])
    if start is None:
        raise ProtocolError("malformed request line")
    headers = parse_headers(lines[1:])
    if start[3] == "1" and "host" not in headers:
        raise ProtocolError("missing mandatory Host header")
    body = await _read_body(reader, headers)
    tokens = {item.strip().lower() for item in headers.get("connection", "").split(",")}
    keep_alive = start[3] == "1" and "close" not in tokens
    return HttpRequest(start[1], start[2], headers, body, keep_alive)


def parse_headers(lines: list[str]) -> dict[str, str]:
    """`Name: value` lines as a dict of lower-cased names (no obsolete line folding)."""
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.match(name):
            raise ProtocolError(f"malformed header line {line[:40]!r}")
        headers[name.lower()] = value.strip(" \t")
    return headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.strip().lower() != "chunked":
            raise ProtocolError(f"unsupported transfer coding {coding!r}")
        return await _read_chunked(reader)
    length = headers.get("content-length", "0").strip()
    if not length.isdigit():
        raise ProtocolError(f"bad Content-Length {length!r}")
    size = int(length)
    if size > MAX_BODY:
        raise ProtocolError("request body too large")
    return await _exactly(reader, size) if size else b""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_field = (await _line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_field[:20]!r}") from None
        if size == 0:
            while await _line(reader) != b"\r\n":  # trailer fields, ignored
                pass
            return b"".join(chunks)
        total += size
        if total > MAX_BODY:
            raise ProtocolError("request body too large")
        chunks.append(await _exactly(reader, size))
        if await _exactly(reader, 2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise ProtocolError("truncated chunked body") from None


async def _exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed inside a request body") from None


class _DateCache:
    """The RFC 7231 date of the current second; formatting it per reply is wasted work."""

    second = -1
    text = ""

    @classmethod
    def now(cls) -> str:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.text = second, formatdate(second, usegmt=True)
        return cls.text


def http_date() -> str:
    """`Tue, 24 Nov 2026 11:48:25 GMT` for now, cached per second."""
    return _DateCache.now()


def encode_response(
    status: int, reason: bytes, headers: list[tuple[str, str]], body: bytes, keep_alive: bool
) -> bytes:
    """Status line, headers (plus `Connection: close` when closing, as h11 adds) and body."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    parts.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)
