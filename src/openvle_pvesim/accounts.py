"""Users, groups and realms as pve-access-control's user.cfg and domains.cfg hold them.

A user has the user.cfg fields (`enable`, `expire`, names, `email`, `comment`, `keys`)
and its groups; a password when it may log in with POST /access/ticket (the simulator
stores a salted hash, as the `pve` realm's shadow file does, and checks `pam` users the
same way). The realms are the two every installation has (Auth/Plugin.pm adds `pam` and
`pve` with these comments when domains.cfg lacks them).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

REALMS = (
    ("pam", "pam", "Linux PAM standard authentication"),
    ("pve", "pve", "Proxmox VE authentication server"),
)
USER_FIELDS = ("enable", "expire", "firstname", "lastname", "email", "comment", "keys")


@dataclass
class Account:
    """One user of user.cfg."""

    userid: str
    enable: bool = True
    expire: int = 0
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    comment: str | None = None
    keys: str | None = None
    groups: set[str] = field(default_factory=set)
    _salt: bytes = field(default=b"", repr=False)
    _hash: bytes = field(default=b"", repr=False)

    def set_password(self, password: str) -> None:
        self._salt = secrets.token_bytes(16)
        self._hash = _digest(self._salt, password)

    def check_password(self, password: str) -> bool:
        """Whether `password` is this user's (no password set: nothing matches)."""
        return bool(self._hash) and hmac.compare_digest(self._hash, _digest(self._salt, password))

    def enabled(self) -> bool:
        """AccessControl.pm `check_user_enabled`: enabled and not expired."""
        return self.enable and not (self.expire and self.expire < time.time())

    def fields(self) -> dict[str, Any]:
        """User.pm `$extract_user_data` (without `full`): the fields that are set."""
        out: dict[str, Any] = {}
        for name in USER_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = int(value) if isinstance(value, bool) else value
        return out


@dataclass
class Group:
    """One group of user.cfg."""

    groupid: str
    comment: str | None = None
    users: set[str] = field(default_factory=set)


def _digest(salt: bytes, password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)


def realm_of(userid: str) -> str:
    return userid.rpartition("@")[2]
