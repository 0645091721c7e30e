"""Who sends a request: a ticket, an API token, or nobody (pve-manager HTTPServer.pm
`auth_handler`, pve-http-server AnyEvent.pm).

The ticket comes from the `PVEAuthCookie` cookie, else from an `Authorization:
PVEAuthCookie=...` header; only without a ticket is an `Authorization: PVEAPIToken=...`
token looked at. GET /access/domains, GET/POST /access/ticket, POST /access/vncticket and
the OpenID login calls need neither. A ticket's user must exist and be enabled, and any
method but GET needs the `CSRFPreventionToken` header issued with it; tokens need none.

Failures are 401 with an empty body: `No ticket`; on 9.1 (pve-manager >= 9.1.5) every
bad ticket or token is `Authentication failed!`, on 8.4 the raw error (`permission denied
- invalid PVE ticket`, `invalid token value!`, `user 'x' is disabled`); a missing or bad
CSRF token is `Permission denied - invalid csrf token` on both.
"""

from __future__ import annotations

from dataclasses import dataclass

from openvle_pvesim.access import AccessControl, Principal
from openvle_pvesim.tickets import COOKIE, extract_auth_value

OPEN = frozenset(
    {
        ("GET", "/access/domains"),
        ("GET", "/access/ticket"),
        ("POST", "/access/ticket"),
        ("POST", "/access/vncticket"),
        ("POST", "/access/openid/login"),
        ("POST", "/access/openid/auth-url"),
    }
)
ANONYMOUS = ""
BAD_CSRF = "Permission denied - invalid csrf token"


@dataclass(frozen=True)
class Auth:
    """The outcome: a principal (None: answer 401 with `error`), and whether the request
    carried an API token (methods with `allowtoken: 0` refuse those)."""

    principal: Principal | None
    error: str = ""
    api_token: bool = False


def authenticate(access: AccessControl, method: str, rel: str, headers: dict[str, str]) -> Auth:
    """Authenticate one request (`rel` without the /api2/json prefix)."""
    authorization = headers.get("authorization")
    ticket = extract_auth_value(headers.get("cookie"), COOKIE)
    ticket = ticket or extract_auth_value(authorization, COOKIE)
    token = not ticket and extract_auth_value(authorization, "PVEAPIToken") is not None
    if (method, rel) in OPEN:
        return Auth(access.principal(ANONYMOUS), api_token=token)
    if token:
        principal, error = access.verify_token(authorization)
        return Auth(principal, "" if principal else _failure(access, error), api_token=True)
    if not ticket:
        return Auth(None, "No ticket")
    return _by_ticket(access, method, ticket, headers.get("csrfpreventiontoken"))


def _by_ticket(access: AccessControl, method: str, ticket: str, csrf: str | None) -> Auth:
    userid = access.tickets.verify_ticket(ticket)
    if userid is None:
        return Auth(None, _failure(access, "permission denied - invalid PVE ticket"))
    account = access.accounts.get(userid)
    if account is None:
        return Auth(None, _failure(access, f"no such user ('{userid}')"))
    if not account.enabled():
        return Auth(None, _failure(access, f"user '{userid}' is disabled"))
    if method != "GET" and not access.tickets.verify_csrf(userid, csrf):
        return Auth(None, BAD_CSRF)
    return Auth(access.principal(userid))


def _failure(access: AccessControl, raw: str) -> str:
    """The 401 reason: the raw error on 8.4, `Authentication failed!` from 9.1.5 on."""
    if raw == "No ticket" or access.version == "8.4":
        return raw
    return "Authentication failed!"
