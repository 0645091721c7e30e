"""Redis connections from the settings: the one place that turns `REDIS_*` into clients.

`redis_client(cfg)` is the redis-py client of the locks, the clone slots and `doctor`;
`arq_settings(cfg)` is arq's `RedisSettings` for the queue (the API's pool and the
workers). Both follow the same three shapes:

- a server: `redis://HOST:6379/0`, or `unix:///run/redis.sock`;
- TLS: `rediss://HOST:6380/0`, the certificate checked against `REDIS_TLS_CA_FILE` (or
  the system's CAs) and the URL's host name;
- Sentinel: `REDIS_SENTINELS=s1:26379,s2:26379` and `REDIS_SENTINEL_MASTER`; the
  sentinels name the current master, each new connection asks them again, so a failover
  moves every client. The URL gives the password, database number and TLS (rediss://);
  the sentinels themselves are asked over plain TCP without a password, as arq does.

Passwords stay in `SecretStr` until a client is built; never log the objects built here
(arq's `RedisSettings` repr shows its password).
"""

from __future__ import annotations

from typing import Any, cast

from arq.connections import RedisSettings as ArqRedisSettings
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.asyncio.sentinel import Sentinel

from openvle_core.settings import RedisSettings


class RedisNotConfigured(ValueError):
    """`REDIS_URL` is unset: there is no Redis to connect to."""


def _parts(cfg: RedisSettings) -> tuple[dict[str, Any], str]:
    """The URL's connection keywords and its kind: `tcp`, `tls` or `unix`."""
    if cfg.url is None:
        raise RedisNotConfigured("REDIS_URL is unset")
    parts: dict[str, Any] = dict(parse_url(cfg.url.get_secret_value()))
    connection_class = parts.pop("connection_class", None)
    if connection_class is UnixDomainSocketConnection:
        return parts, "unix"
    return parts, "tls" if connection_class is SSLConnection else "tcp"


def _auth(parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "db": int(parts.get("db", 0)),
        "username": parts.get("username"),
        "password": parts.get("password"),
    }


def _tls(cfg: RedisSettings, *, check_hostname: bool) -> dict[str, Any]:
    return {
        "ssl": True,
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
        "ssl_check_hostname": check_hostname,
    }


def redis_client(cfg: RedisSettings, *, timeout: float | None = None) -> Redis:
    """A redis-py asyncio client for `REDIS_*`; it connects on first use."""
    parts, kind = _parts(cfg)
    timeouts: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if cfg.sentinel_hosts:
        # arq's Sentinel path passes ssl alone: the same here (system CAs, no host check:
        # the sentinels hand out addresses, not the names in the certificate).
        tls: dict[str, Any] = {"ssl": True} if kind == "tls" else {}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            cfg.sentinel_hosts, sentinel_kwargs=dict(timeouts), **_auth(parts), **timeouts, **tls
        )
        return cast(Redis, sentinel.master_for(cfg.sentinel_master))
    if kind == "unix":
        return Redis(unix_socket_path=parts["path"], **_auth(parts), **timeouts)
    direct_tls = _tls(cfg, check_hostname=True) if kind == "tls" else {}
    return Redis(
        host=parts.get("host", "localhost"),
        port=int(parts.get("port", 6379)),
        **_auth(parts),
        **timeouts,
        **direct_tls,
    )


def arq_settings(cfg: RedisSettings) -> ArqRedisSettings:
    """arq's RedisSettings for `REDIS_*` (the same server, TLS and Sentinel choices)."""
    parts, kind = _parts(cfg)
    auth = _auth(parts)
    common: dict[str, Any] = {
        "database": auth["db"],
        "username": auth["username"],
        "password": auth["password"],
        "ssl": kind == "tls",
    }
    if cfg.sentinel_hosts:
        return ArqRedisSettings(
            host=cfg.sentinel_hosts, sentinel=True, sentinel_master=cfg.sentinel_master, **common
        )
    if kind == "unix":
        return ArqRedisSettings(unix_socket_path=parts["path"], **common)
    tls: dict[str, Any] = {}
    if kind == "tls":
        tls = _tls(cfg, check_hostname=True)
        tls.pop("ssl")
    return ArqRedisSettings(
        host=parts.get("host", "localhost"), port=int(parts.get("port", 6379)), **common, **tls
    )
