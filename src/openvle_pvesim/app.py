"""The request pipeline, independent of the transport.

Order as in pve-http-server: split the `/api2/json` prefix, authenticate (`login`: ticket
or token; 401 after the 3 s delay, scaled), refuse a body on GET/DELETE, route against
the registered schema templates (501 otherwise), apply HTTP fault injection, merge and
validate parameters (400), evaluate the schema's permission check (403), call the
handler, and format the envelope. Handlers raise `PVEError`; anything else becomes a 500
with its text. Every 401 waits the 3 s, a failed ticket login (POST /access/ticket)
included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from openvle_pvesim.contract import ROUTES, Handler, Request, Response
from openvle_pvesim.errors import PVEError
from openvle_pvesim.faults import FaultInjector, HttpFault
from openvle_pvesim.login import authenticate
from openvle_pvesim.permcheck import check_method
from openvle_pvesim.schema import Method, load_schema, validate_params, validate_response
from openvle_pvesim.takeover import take_vmid

if TYPE_CHECKING:
    from openvle_pvesim.access import AccessControl, Principal
    from openvle_pvesim.cluster import Cluster

log = logging.getLogger(__name__)
PREFIX = "/api2/json"
AUTH_DELAY_S = 3.0
_PARAM_SEGMENT = re.compile(r"^\{([^}]+)\}$")


@dataclass
class Reply:
    """A finished HTTP answer: status, reason phrase and the JSON body (maybe empty)."""

    status: int
    reason: str
    body: bytes = b""


def ok_body(data: Any, extra: dict[str, Any] | None = None) -> bytes:
    envelope = {"data": data, **(extra or {})}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def error_reply(status: int, message: str, errors: dict[str, str] | None = None) -> Reply:
    """PVE's error envelope; the reason phrase is the first line of the message."""
    body: dict[str, Any] = {"data": None, "message": message}
    if errors:
        body["errors"] = errors
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Reply(status, message.split("\n", 1)[0], encoded)


def pve_error_reply(exc: PVEError) -> Reply:
    message = exc.message if exc.message.endswith("\n") else exc.message + "\n"
    return error_reply(exc.status, message, exc.errors)


@dataclass(frozen=True)
class _Params:
    """The raw parameter sources of one request."""

    query: str
    headers: dict[str, str]
    body: bytes
    path: dict[str, str]


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    methods: dict[str, str] = field(default_factory=dict)  # method -> template


class Router:
    """Matches concrete paths against the templates registered for one PVE version."""

    def __init__(self, version: str, routes: dict[tuple[str, str], Handler]) -> None:
        schema = load_schema(version)
        self.root = _Node()
        for method, template in routes:
            if schema.method(method, template) is not None:
                self._insert(method, template)

    def _insert(self, method: str, template: str) -> None:
        node = self.root
        for segment in template.strip("/").split("/"):
            param = _PARAM_SEGMENT.match(segment)
            if param:
                if node.param is None:
                    node.param = (param[1], _Node())
                node = node.param[1]
            else:
                node = node.children.setdefault(segment, _Node())
        node.methods[method] = template

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """(template, path params) for `path` (without the /api2/json prefix)."""
        params: dict[str, str] = {}
        node = self.root
        for raw in path.strip("/").split("/"):
            segment = unquote(raw)
            child = node.children.get(segment)
            if child is not None:
                node = child
            elif node.param is not None and segment:
                params[node.param[0]] = segment
                node = node.param[1]
            else:
                return None
        template = node.methods.get(method)
        return (template, params) if template else None


class SimulatorApp:
    """Everything between a parsed HTTP request and its reply."""

    def __init__(
        self,
        cluster: Cluster,
        access: AccessControl,
        faults: FaultInjector,
        *,
        version: str,
        time_scale: float = 0.0,
        check_responses: bool = False,
    ) -> None:
        self.cluster = cluster
        self.access = access
        self.faults = faults
        self.version = version
        self.schema = load_schema(version)
        self.router = Router(version, ROUTES)
        self.time_scale = time_scale
        self.check_responses = check_responses
        self.violations: list[str] = []
        self.requests = 0
        # (method, path template) -> requests answered: the simulator's own request log
        self.request_log: Counter[tuple[str, str]] = Counter()

    async def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Reply | HttpFault:
        """Answer one request (or say which connection-level fault to play)."""
        self.requests += 1
        path, _, query = target.partition("?")
        if not path.startswith(PREFIX + "/"):
            return error_reply(501, "no such uri")
        rel = path[len(PREFIX) :]
        auth = authenticate(self.access, method, rel, headers)
        if auth.principal is None:
            await asyncio.sleep(AUTH_DELAY_S * self.time_scale)
            return Reply(401, auth.error)
        if body and method in {"GET", "DELETE"}:
            return error_reply(501, f"Unexpected content for method '{method}'")
        found = self.router.match(method, rel)
        self.request_log[(method, found[0] if found else rel)] += 1
        fault = self.faults.http_fault(method, found[0] if found else None, rel)
        if fault is not None:
            return fault if fault.kind != "status" else _fault_reply(fault)
        if found is None:
            return error_reply(501, f"Method '{method} {rel}' not implemented")
        spec = self.schema.method(method, found[0])
        assert spec is not None  # the router only holds templates of this schema
        params = _Params(query, headers, body, found[1])
        reply = await self._call(spec, rel, params, auth.principal, auth.api_token)
        if reply.status == 401:
            await asyncio.sleep(AUTH_DELAY_S * self.time_scale)
        return reply

    async def _call(
        self, spec: Method, rel: str, raw: _Params, principal: Principal, api_token: bool
    ) -> Reply:
        """Validate (400), check permissions (403), run the handler, format the reply."""
        try:
            params = _merge_params(spec.method, raw.query, raw.headers, raw.body, raw.path)
            if api_token and not spec.allowtoken:
                raise PVEError(
                    403,
                    f"Permission check failed (URI '{rel}' not available with API token, "
                    "need proper ticket.\n)",
                )
            coerced = validate_params(spec, params)
            check_method(spec.permissions, principal, coerced)
            take_vmid(self.cluster, self.faults, spec.method, spec.template, coerced)
            request = Request(spec.method, rel, spec.template, coerced, principal, self.cluster)
            result = await ROUTES[(spec.method, spec.template)](request)
        except PVEError as exc:
            return pve_error_reply(exc)
        except Exception as exc:  # a plain `die` in a PVE handler is a 500 too
            log.exception("handler %s %s failed", spec.method, spec.template)
            return error_reply(500, f"{exc}\n")
        return self._success(spec, result)

    def _success(self, spec: Method, result: Any) -> Reply:
        data, extra = (result.data, result.extra) if isinstance(result, Response) else (result, {})
        if self.check_responses:
            self.violations.extend(
                validate_response(self.version, spec.method, spec.template, data)
            )
        return Reply(200, "OK", ok_body(data, extra))


def _fault_reply(fault: HttpFault) -> Reply:
    if fault.status == 500:
        return error_reply(500, fault.reason + "\n")
    return Reply(fault.status, fault.reason)


def _form(text: str) -> dict[str, Any]:
    """URL-encoded pairs; a repeated key becomes a list (joined later for `*-list`)."""
    params: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in params:
            previous = params[name]
            params[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[name] = value
    return params


def _merge_params(
    method: str, query: str, headers: dict[str, str], body: bytes, path_params: dict[str, str]
) -> dict[str, Any]:
    """Query (all methods) plus form or JSON body (POST/PUT), then the URI parameters."""
    params: dict[str, Any] = _form(query)
    if body and method in {"POST", "PUT"}:
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                raise PVEError(400, f"malformed JSON body: {exc}") from None
            if not isinstance(decoded, dict):
                raise PVEError(400, "JSON body must be an object")
            params.update(decoded)
        else:
            params.update(_form(body.decode("utf-8", "replace")))
    conflicts = {
        name: "duplicate parameter (already defined in URI) with conflicting values!"
        for name, value in path_params.items()
        if name in params and str(params[name]) != value
    }
    if conflicts:
        raise PVEError(400, "Parameter verification failed.", conflicts)
    params.update(path_params)
    return params
