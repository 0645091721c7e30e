"""HTTP/1.1 requests off an asyncio stream, parsed by httptools (llhttp), and reply encoding.

llhttp refuses what a real server refuses: a duplicate `Content-Length`, `Content-Length`
beside `Transfer-Encoding`, a length or chunk size that is not plain digits. Such a request
gets `400 bad request` and the connection closes, so no leftover bytes are read as a new
request. On top of the parser, as pve-http-server's AnyEvent.pm does it
(`unshift_read_header`, `push_request_header`): a `Transfer-Encoding` is answered 501
(`chunked transfer encoding not supported`, `Unknown transfer encoding 'x'`) and the
connection closed, and HTTP/1.1 without `Host` is a 400. Heads are limited to 64 KiB and
bodies to 4 MiB. Keep-alive: HTTP/1.1 without `Connection: close`; HTTP/1.0 always closes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate

import httptools

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
READ_SIZE = 65536


class ProtocolError(Exception):
    """The request cannot be served: answer `status reason` (when set), then close."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class HttpRequest:
    """One parsed request: header names lower-cased (the last duplicate wins)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _Parse:
    """httptools callbacks collecting complete requests (pipelined ones queue up)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[HttpRequest | ProtocolError] = deque()
        self.in_message = False
        self.head_open = False
        self.head_bytes = 0  # url and header bytes of the current head
        self.fed = 0  # bytes fed while the current head was open (over-counts one read)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._refused: ProtocolError | None = None

    def on_message_begin(self) -> None:
        self.in_message = self.head_open = True
        self.head_bytes = self.fed = 0
        self._url, self._headers, self._body, self._size = b"", {}, [], 0

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > MAX_HEAD:
            self._refused = ProtocolError("header too large", 431)
            raise self._refused

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip(" \t")

    def on_headers_complete(self) -> None:
        self.head_open = False
        coding = self._headers.get("transfer-encoding")
        if coding is not None and "content-length" in self._headers:
            self._refused = ProtocolError("bad request")  # llhttp's refusal, kept first
            raise self._refused
        if coding is not None:
            text = "chunked transfer encoding not supported"
            if coding.lower() != "chunked":
                text = f"Unknown transfer encoding '{coding}'"
            self._refused = ProtocolError(text, 501)
            raise self._refused
        if self.parser.get_http_version() == "1.1" and "host" not in self._headers:
            self._refused = ProtocolError("bad request")
            raise self._refused

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            self._refused = ProtocolError("request entity too large", 413)
            raise self._refused
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        keep_alive = self.parser.get_http_version() == "1.1" and self.parser.should_keep_alive()
        method = self.parser.get_method().decode("latin-1")
        target = self._url.decode("latin-1")
        self.ready.append(
            HttpRequest(method, target, self._headers, b"".join(self._body), keep_alive)
        )

    def feed(self, data: bytes) -> None:
        """Parse `data`; a refusal is queued after the requests that came before it."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.ready.append(self._refused or ProtocolError("bad request"))
            return
        if self.head_open:
            self.fed += len(data)
            if self.fed > MAX_HEAD + READ_SIZE:  # one header line that never ends
                self.ready.append(ProtocolError("header too large", 431))


class RequestReader:
    """Reads requests one by one from a connection; a ProtocolError ends it."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self._parse = _Parse()

    async def next(self) -> HttpRequest | None:
        """The next request, None when the peer closed between requests.

        Raises ProtocolError for a request to refuse (status set) or a peer that closed
        inside one (status 0: nobody left to answer).
        """
        ready = self._parse.ready
        while not ready:
            data = await self.reader.read(READ_SIZE)
            if not data:
                if self._parse.in_message:
                    raise ProtocolError("connection closed inside a request", 0)
                return None
            self._parse.feed(data)
        item = ready.popleft()
        if isinstance(item, ProtocolError):
            raise item
        return item


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
    """Status line, headers (plus `Connection: close` when closing) and body."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    parts.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)
