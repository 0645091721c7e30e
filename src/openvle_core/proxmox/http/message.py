"""Request bytes and response values for the direct path, without httpx's models.

Building an `httpx.Request` (URL parsing and quoting, header merging) and reading an
`httpx.Response` (its stream, decoders and header objects) cost about a third of the
client's CPU for a small Proxmox call. The Proxmox client's requests are plain: an
`https://host:port/api2/json/...` URL its path template quoted, string parameters, a
form body. `prepare` writes the bytes `httpx.AsyncClient.request` would send for such a
request (the same request line, the same headers in the same order, the same form body:
`tests/proxmox/test_direct_path.py` compares them on the wire) and returns None for
anything else, which then goes through `httpx.Request` as before (`prepared_by_httpx`).
`reply_of` gives the response as a `Reply`; a content-coded body (gzip, deflate, or what
httpx's decoders take) is decoded by httpx's own `Response`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from openvle_core.proxmox.http.connection import Head, field_ok, request_head, token_ok

Origin = tuple[str, str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}
# A URL httpx would leave as it is: lower-case host (or IPv4, or bracketed IPv6), a port,
# a path of unreserved and percent-encoded characters (and sub-delimiters), no query.
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?"
    r"((?:/(?:[A-Za-z0-9_~-]|%[0-9A-F]{2})(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})*)*/?)"
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_OWN_HEADERS = frozenset({b"host", b"content-length", b"content-type", b"transfer-encoding"})
_FORM_TYPE = b"Content-Type: application/x-www-form-urlencoded\r\n"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready for the wire: where it goes, its head and body, and whether its
    response has no body whatever its head says (HEAD)."""

    origin: Origin
    message: bytes
    head_only: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole response: what the Proxmox client reads of `httpx.Response`, with the
    body already content-decoded."""

    status_code: int
    reason_phrase: str
    headers: list[tuple[bytes, bytes]]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json.loads(self.content)


def prepare(
    method: str,
    url: str,
    headers: httpx.Headers,
    params: Mapping[str, str] | None,
    data: Mapping[str, str] | None,
    checked: FieldsCache,
) -> Prepared | None:
    """The bytes `httpx.AsyncClient.request(method, url, params=, data=, headers=)` sends,
    for a plain URL, string parameters and headers httpx adds nothing before; else None.
    `checked` keeps the header lines once checked."""
    match = _PLAIN_URL.fullmatch(url)
    if match is None or not token_ok(method.encode("ascii", "replace")):
        return None
    scheme, host, port_text, path = match.groups()
    if not path:
        return None
    default = DEFAULT_PORTS[scheme]
    port = default if port_text is None else int(port_text)
    if not 0 < port < 65536 or not _all_str(params) or not _all_str(data):
        return None
    netloc = host if port == default else f"{host}:{port}"
    target = f"{path}?{urlencode(list(params.items()))}" if params else path
    lines = [method.encode(), b" ", target.encode("ascii"), b" HTTP/1.1\r\nHost: "]
    lines += (netloc.encode("ascii"), b"\r\n")
    if not data and method in _BODY_METHODS:
        lines.append(b"Content-Length: 0\r\n")
    fields = checked.lines(tuple(headers.raw))
    if fields is None:
        return None
    lines.append(fields)
    body = b""
    if data:
        body = urlencode(list(data.items()), doseq=True).encode("utf-8")
        lines += (b"Content-Length: ", str(len(body)).encode(), b"\r\n", _FORM_TYPE)
    lines += (b"\r\n", body)
    return Prepared((scheme, host.strip("[]"), port), b"".join(lines), method == "HEAD")


class FieldsCache(dict[tuple[tuple[bytes, bytes], ...], bytes | None]):
    """Header lines already checked, by the headers' raw items (a client sends the same
    few sets); held by one transport, so the token in them goes with it."""

    MAX = 16

    def lines(self, raw: tuple[tuple[bytes, bytes], ...]) -> bytes | None:
        if raw not in self:
            if len(self) >= self.MAX:
                self.clear()
            self[raw] = _fields(raw)
        return self[raw]


def _fields(raw: tuple[tuple[bytes, bytes], ...]) -> bytes | None:
    """Header lines, checked; None when httpx would add or replace one of them."""
    lines: list[bytes] = []
    for name, value in raw:
        if name.lower() in _OWN_HEADERS or not field_ok(name, value):
            return None
        lines += (name, b": ", value, b"\r\n")
    return b"".join(lines)


def _all_str(values: Mapping[str, str] | None) -> bool:
    return values is None or all(
        type(key) is str and type(value) is str for key, value in values.items()
    )


async def prepared_by_httpx(request: httpx.Request) -> Prepared:
    """The bytes of an `httpx.Request` (its body read whole)."""
    url = request.url
    scheme = url.scheme
    if scheme not in DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
    body = await request.aread()
    message = request_head(request, len(body)) + body
    origin = (scheme, url.host, url.port or DEFAULT_PORTS[scheme])
    return Prepared(origin, message, request.method == "HEAD")


async def reply_of(head: Head, content: bytes) -> Reply:
    """The response as a `Reply`; a body with a content coding is decoded as httpx does."""
    reason = head.reason.decode("ascii", errors="ignore")
    coded = any(
        name.lower() == b"content-encoding" and value.strip().lower() not in (b"", b"identity")
        for name, value in head.headers
    )
    if coded:
        response = httpx.Response(
            head.status,
            headers=head.headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )
        content = await response.aread()
    return Reply(head.status, reason, head.headers, content)
