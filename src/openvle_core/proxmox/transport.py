"""The client's one I/O seam: build the httpx client, send, unwrap the envelope, translate.

`ApiCaller` is the only code that touches httpx. It formats a schema path template,
encodes parameters the way PVE expects (0/1 booleans, comma lists, form bodies), sends
with the token header, retries through `retry.call_with_retry`, and turns every httpx
error or PVE error response into the error tree of `errors.py`, chained with `from exc`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import ssl
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from openvle_core.proxmox.errors import (
    ProxmoxBadResponse,
    ProxmoxError,
    ProxmoxTlsError,
    ProxmoxUnavailable,
    translate_response,
)
from openvle_core.proxmox.http.message import Reply
from openvle_core.proxmox.http.pool import KeepAliveTransport
from openvle_core.proxmox.observe import NullObserver, ProxmoxObserver
from openvle_core.proxmox.retry import RetryPolicy, call_with_retry
from openvle_core.settings import ProxmoxSettings

Params = Mapping[str, object]
Answer = httpx.Response | Reply  # the client's response, or the direct path's
# Where httpx.AsyncClient (trust_env) would send through a proxy: not sent directly then.
_PROXY_VARIABLES = tuple(
    name for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") for name in (base, base.lower())
)
_HTTPX_LOG = logging.getLogger("httpx")
_DIRECT: weakref.WeakKeyDictionary[httpx.AsyncClient, KeepAliveTransport] = (
    weakref.WeakKeyDictionary()
)
# A connection that is never established carries no request: safe to retry any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def build_http_client(settings: ProxmoxSettings, *, max_connections: int = 20) -> httpx.AsyncClient:
    """The process-wide AsyncClient for Proxmox: TLS per PVE_VERIFY_SSL, explicit timeouts.

    It sends through `http.pool.KeepAliveTransport` unless PVE_HTTP_TRANSPORT=httpcore.
    With httpcore every connection may stay alive: httpcore 1.0 counts busy connections
    against the keep-alive limit (encode/httpcore#1035), so a lower limit makes most
    requests beyond it pay a fresh TLS handshake under load.
    """
    verify = tls_verify(settings.verify_ssl)
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if settings.http_transport == "httpcore":
        return httpx.AsyncClient(verify=verify, timeout=timeout, limits=limits)
    transport = KeepAliveTransport(verify=verify, max_connections=max_connections)
    # verify and limits still apply to the transports httpx mounts for environment proxies.
    client = httpx.AsyncClient(transport=transport, verify=verify, timeout=timeout, limits=limits)
    if not any(os.environ.get(name) for name in _PROXY_VARIABLES):
        _DIRECT[client] = transport
    return client


def direct_transport(http: httpx.AsyncClient) -> KeepAliveTransport | None:
    """The transport `ApiCaller` sends through without the client's layers
    (`KeepAliveTransport.request`): that of a client made by `build_http_client` with our
    transport and no proxy from the environment; None for any other client (tests' mocks,
    PVE_HTTP_TRANSPORT=httpcore, a proxy), which is used as it is. So is a client given
    event hooks, and any client while httpx's logger is at INFO (its line per request;
    both checked per request)."""
    return _DIRECT.get(http)


def tls_verify(verify: bool | Path) -> ssl.SSLContext | bool:
    """PVE_VERIFY_SSL as httpx wants it: False, or a context (system CAs or the bundle)."""
    if verify is False:
        return False
    if verify is True:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(verify))


def encode_params(params: Params | None) -> dict[str, str]:
    """PVE's encoding: booleans 0/1, sequences comma-joined, None left out."""
    encoded: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            encoded[key] = "1" if value else "0"
        elif isinstance(value, Sequence) and not isinstance(value, str):
            encoded[key] = ",".join(str(item) for item in value)
        else:
            encoded[key] = str(value)
    return encoded


class ApiCaller:
    """Sends API calls for one token; returns the decoded envelope (`{"data": ...}`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: ProxmoxSettings,
        *,
        retry: RetryPolicy,
        observer: ProxmoxObserver | None = None,
    ) -> None:
        self._http = http
        self._base = settings.base_url
        secret = settings.token_value.get_secret_value()
        self._headers = {"Authorization": f"PVEAPIToken={settings.token_id}={secret}"}
        # the direct path: the client's default headers and timeouts, taken once
        self._direct = direct_transport(http)
        self._direct_headers = httpx.Headers(http.headers)  # merged as the client merges
        self._direct_headers.update(self._headers)
        self._timeouts = http.timeout.as_dict()
        self._retry = retry
        self._observer: ProxmoxObserver = observer or NullObserver()
        self._rng = random.Random()  # backoff jitter; one per caller, not one per call

    async def get(self, template: str, params: Params | None = None, **path: object) -> Any:
        """GET and return `data` (retried on transient errors)."""
        return (await self.call("GET", template, params, **path))["data"]

    async def get_decoded(
        self, template: str, decode: Callable[[bytes], Any], **path: object
    ) -> Any:
        """GET (retried as `get`) and return `decode(body)` of a 2xx answer: for a large
        answer decoded straight into its own types (`resources.decode_entries`). `decode`
        raises `ValueError` for a body it cannot take, which becomes
        `ProxmoxBadResponse`; an error answer is translated as for every call."""
        return (await self._call("GET", template, None, path, decode))["data"]

    async def write(
        self, method: str, template: str, params: Params | None = None, **path: object
    ) -> Any:
        """POST/PUT/DELETE and return `data` (retried only when nothing can have happened)."""
        return (await self.call(method, template, params, **path))["data"]

    async def call(
        self, method: str, template: str, params: Params | None = None, **path: object
    ) -> dict[str, Any]:
        """Send with retries; return the whole envelope (for `total` beside `data`)."""
        return await self._call(method, template, params, path)

    async def _call(
        self,
        method: str,
        template: str,
        params: Params | None,
        path: Mapping[str, object],
        decode: Callable[[bytes], Any] | None = None,
    ) -> dict[str, Any]:
        """`call`; with `decode`, a 2xx answer is `{"data": decode(body)}`."""
        url = self._base + template.format_map(
            {key: quote(str(value), safe="") for key, value in path.items()}
        )
        encoded = encode_params(params)

        def note_retry(exc: ProxmoxUnavailable) -> None:
            self._observer.retrying(method, template, type(exc).__name__)

        async def attempt() -> dict[str, Any]:
            return await self._send(method, template, url, encoded, decode)

        return await call_with_retry(
            attempt,
            policy=self._retry,
            idempotent=method == "GET",
            on_retry=note_retry,
            rng=self._rng,
        )

    async def _send(
        self,
        method: str,
        template: str,
        url: str,
        params: dict[str, str],
        decode: Callable[[bytes], Any] | None = None,
    ) -> dict[str, Any]:
        """One attempt; the choke point where failures become `ProxmoxError`s."""
        started = time.perf_counter()
        status: int | None = None
        error: ProxmoxError | None = None
        query = params if params and method in {"GET", "DELETE"} else None
        form = params if params and method in {"POST", "PUT"} else None
        try:
            response = await self._exchange(method, url, query, form)
            status = response.status_code
            if decode is not None and response.is_success:
                return {"data": _decoded(response, decode, method=method, path=template)}
            return _envelope(response, method=method, path=template)
        except ProxmoxError as exc:
            error = exc
            raise
        except httpx.HTTPError as exc:
            error = _translate_transport(exc, method=method, path=template)
            raise error from exc
        finally:
            seconds = time.perf_counter() - started
            kind = type(error).__name__ if error is not None else None
            self._observer.request_done(method, template, status, seconds, kind)

    async def _exchange(
        self, method: str, url: str, query: dict[str, str] | None, form: dict[str, str] | None
    ) -> Answer:
        """Send through the direct path when nothing of httpx's client layers would act
        now (no event hooks, httpx's logger not at INFO; see `direct_transport`), else
        through the client."""
        direct, hooks = self._direct, self._http.event_hooks
        if (
            direct is None
            or hooks["request"]
            or hooks["response"]
            or _HTTPX_LOG.isEnabledFor(logging.INFO)
        ):
            return await self._http.request(
                method, url, params=query, data=form, headers=self._headers
            )
        return await direct.request(
            method,
            url,
            headers=self._direct_headers,
            timeouts=self._timeouts,
            params=query,
            data=form,
        )


def _envelope(response: Answer, *, method: str, path: str) -> dict[str, Any]:
    """Decode a 2xx envelope, or raise the translated PVE error for any other status."""
    body = _json_or_none(response.content)
    if response.is_success:
        if not isinstance(body, dict) or "data" not in body:
            snippet = response.content[:80].decode("utf-8", "replace")
            raise ProxmoxBadResponse(
                f"{method} {path}: not a JSON envelope: {snippet!r}",
                status=response.status_code,
                method=method,
                path=path,
            )
        return body
    message = response.reason_phrase
    errors: dict[str, str] | None = None
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        raw_errors = body.get("errors")
        if isinstance(raw_errors, dict):
            errors = {str(key): str(value) for key, value in raw_errors.items()}
    raise translate_response(response.status_code, message, errors, method=method, path=path)


def _decoded(response: Answer, decode: Callable[[bytes], Any], *, method: str, path: str) -> Any:
    """`decode` of a 2xx body; its `ValueError` as `ProxmoxBadResponse`."""
    try:
        return decode(response.content)
    except ValueError as exc:
        raise ProxmoxBadResponse(
            f"unexpected {path}: {exc}", status=response.status_code, method=method, path=path
        ) from exc


def _json_or_none(content: bytes) -> Any:
    """The decoded body, or None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def _translate_transport(exc: httpx.HTTPError, *, method: str, path: str) -> ProxmoxError:
    """Map an httpx exception: TLS failures are permanent, network failures transient."""
    where = f"{method} {path}"
    if isinstance(exc, httpx.ConnectError) and _is_tls_failure(exc):
        return ProxmoxTlsError(
            f"{where}: TLS verification failed ({exc}); set PVE_VERIFY_SSL to the CA bundle",
            method=method,
            path=path,
        )
    if isinstance(exc, _NOT_SENT):
        error = ProxmoxUnavailable(f"{where}: cannot connect: {exc!r}", method=method, path=path)
        error.retry_safe = True
        return error
    if isinstance(exc, _MAYBE_SENT):
        return ProxmoxUnavailable(f"{where}: {exc!r}", method=method, path=path)
    return ProxmoxError(f"{where}: {exc!r}", method=method, path=path)


def _is_tls_failure(exc: BaseException) -> bool:
    """True if a certificate verification error is anywhere in the exception chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
