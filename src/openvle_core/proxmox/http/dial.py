"""Open a TCP socket to a host name the way RFC 8305 (Happy Eyeballs) asks.

A name with several addresses (IPv6 and IPv4, or several nodes behind one name) is
tried in order, families interleaved, starting the next attempt after `delay` or as
soon as one fails, so an unreachable first address costs `delay` rather than the
whole connect timeout. asyncio's own `happy_eyeballs_delay` does this, but uvloop
(which runs the API under uvicorn) does not accept the argument, hence this module.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Sequence
from typing import Any

AddrInfo = tuple[int, int, int, str, Any]


def interleaved(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """Alternate address families, keeping the resolver's order within each."""
    families: dict[int, list[AddrInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    rows = itertools.zip_longest(*families.values())
    return [info for row in rows for info in row if info is not None]


async def _attempt(info: AddrInfo) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_tcp(host: str, port: int, *, delay: float = 0.25) -> socket.socket:
    """A connected non-blocking socket; OSError naming every address that failed."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} resolves to no address")
    return await open_first(interleaved(infos), delay=delay)


async def open_first(infos: Sequence[AddrInfo], *, delay: float) -> socket.socket:
    """Race connections to `infos`, each started `delay` after the last (or its failure)."""
    queue, errors = list(infos), list[BaseException]()
    pending: set[asyncio.Task[socket.socket]] = set()
    try:
        while queue or pending:
            if queue:
                pending.add(asyncio.create_task(_attempt(queue.pop(0))))
            done, pending = await asyncio.wait(
                pending, timeout=delay if queue else None, return_when=asyncio.FIRST_COMPLETED
            )
            connected = [task.result() for task in done if task.exception() is None]
            errors += [error for task in done if (error := task.exception()) is not None]
            if connected:
                for extra in connected[1:]:
                    extra.close()
                return connected[0]
        if len(errors) == 1:
            raise errors[0]  # one address: its own error (ConnectionRefusedError, ...)
        tried = ", ".join(str(info[4][0]) for info in infos)
        raise OSError(f"cannot connect to {tried}: " + "; ".join(map(str, errors)))
    finally:
        for task in pending:
            task.cancel()
