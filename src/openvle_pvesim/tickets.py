"""Authentication tickets and CSRF prevention tokens, in PVE's formats.

pve-common Ticket.pm: a ticket is `PVE:<userid>:<8 hex digits of its creation time>::
<signature>` (PVE signs with the cluster's RSA key; the simulator with an HMAC-SHA256 key
of its own, base64 without line breaks) and is valid from 5 min before to 2 h after its
time (AccessControl.pm `$ticket_lifetime`, `$auth_graceperiod`). The CSRF prevention
token is `<8 hex digits>:<base64 HMAC-SHA256 of "<time>:<userid>">`, with Perl's
unpadded base64, valid for the same window. pve-http-server Formatter.pm
`extract_auth_value` finds `PVEAuthCookie=` / `PVEAPIToken=` values in headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import unquote

COOKIE = "PVEAuthCookie"
TICKET_LIFETIME = 2 * 3600
GRACE = 5 * 60
_TICKET_RE = re.compile(r"^(PVE:(\S+):([A-Z0-9]{8}))::([^:\s]+)$")
_CSRF_RE = re.compile(r"^([A-Z0-9]{8}):(\S+)$")


def extract_auth_value(header: str | None, key: str) -> str | None:
    """The URI-unescaped value after `key=` (or `key `) in a Cookie/Authorization header."""
    if not header:
        return None
    match = re.search(rf"(?:^|\s){re.escape(key)}(?:=| )([^;]*)", header)
    return unquote(match[1]) if match and match[1] else None


def _young(stamp: str, now: float) -> bool:
    age = now - int(stamp, 16)
    return -GRACE < age < TICKET_LIFETIME


class TicketAuthority:
    """Issues and verifies the tickets and CSRF tokens of one simulated cluster."""

    def __init__(self) -> None:
        self._ticket_key = secrets.token_bytes(32)
        self._csrf_key = secrets.token_bytes(32)

    def _sign(self, key: bytes, text: str, pad: bool) -> str:
        digest = base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest())
        return digest.decode() if pad else digest.decode().rstrip("=")

    def ticket(self, userid: str, now: float | None = None) -> str:
        """Ticket.pm `assemble_rsa_ticket` for `userid` (`:` in the data escaped)."""
        stamp = f"{int(time.time() if now is None else now):08X}"
        plain = f"PVE:{userid.replace(':', '%3A')}:{stamp}"
        return f"{plain}::{self._sign(self._ticket_key, plain, pad=True)}"

    def verify_ticket(self, ticket: str, now: float | None = None) -> str | None:
        """The ticket's userid when the signature holds and it is not too old, else None."""
        match = _TICKET_RE.match(ticket)
        if match is None:
            return None
        expected = self._sign(self._ticket_key, match[1], pad=True)
        if not hmac.compare_digest(expected, match[4]):
            return None
        if not _young(match[3], time.time() if now is None else now):
            return None
        return unquote(match[2])

    def csrf_token(self, userid: str, now: float | None = None) -> str:
        stamp = f"{int(time.time() if now is None else now):08X}"
        return f"{stamp}:{self._sign(self._csrf_key, f'{stamp}:{userid}', pad=False)}"

    def verify_csrf(self, userid: str, token: str | None, now: float | None = None) -> bool:
        match = _CSRF_RE.match(token or "")
        if match is None:
            return False
        expected = self._sign(self._csrf_key, f"{match[1]}:{userid}", pad=False)
        if not hmac.compare_digest(expected, match[2]):
            return False
        return _young(match[1], time.time() if now is None else now)
