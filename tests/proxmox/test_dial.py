"""Happy Eyeballs connects: a dead first address costs the stagger delay, not the timeout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
import uvloop

from openvle_core.proxmox.http.dial import AddrInfo, interleaved, open_first

V4, V6 = socket.AF_INET, socket.AF_INET6
TCP = socket.SOCK_STREAM


def info(family: int, address: str, port: int = 8006) -> AddrInfo:
    return (family, TCP, 6, "", (address, port))


def test_families_alternate_in_resolver_order() -> None:
    infos = [info(V6, "::1"), info(V6, "::2"), info(V4, "10.0.0.1"), info(V4, "10.0.0.2")]
    assert [i[4][0] for i in interleaved(infos)] == ["::1", "10.0.0.1", "::2", "10.0.0.2"]


@contextmanager
def blackhole() -> Iterator[AddrInfo]:
    """An address that drops SYNs: a listener whose accept queue is full (Linux)."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(("127.0.0.2", port))
        fillers.append(filler)
    try:
        yield info(V4, "127.0.0.2", port)
    finally:
        for sock in [*fillers, listener]:
            sock.close()


@contextmanager
def refusing() -> Iterator[AddrInfo]:
    """An address that refuses connections: a bound port nobody listens on."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield info(V4, "127.0.0.1", bound.getsockname()[1])


async def connect_past_a_dead_address() -> tuple[str, int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    good = info(V4, "127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        with blackhole() as dead:
            async with asyncio.timeout(5):  # one address after the other would hang here
                sock = await open_first([dead, good], delay=0.05)
            with sock:
                peer: tuple[str, int] = sock.getpeername()
                return peer
    finally:
        server.close()


async def test_a_dead_first_address_is_passed_by() -> None:
    peer = await connect_past_a_dead_address()
    assert peer[0] == "127.0.0.1"


def test_a_dead_first_address_is_passed_by_on_uvloop() -> None:
    assert uvloop.run(connect_past_a_dead_address())[0] == "127.0.0.1"


async def test_every_address_failing_names_them_all() -> None:
    with (
        refusing() as first,
        refusing() as second,
        pytest.raises(OSError, match=r"127\.0\.0\.1, 127\.0\.0\.1") as caught,
    ):
        await open_first([first, second], delay=0.05)
    assert str(caught.value).count("Connect call failed") == 2


async def test_one_address_failing_raises_its_own_error() -> None:
    with refusing() as only, pytest.raises(ConnectionRefusedError):
        await open_first([only], delay=0.05)
