"""HTTPS with the simulator's throw-away CA."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography import x509

from openvle_pvesim import Simulator

Connect = Callable[..., httpx.AsyncClient]


async def test_tls_verifies_with_the_printed_ca(
    make_sim: Callable[..., Any], connect: Connect
) -> None:
    async with make_sim(tls=True) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        assert sim.ca_file is not None
        ca = x509.load_pem_x509_certificate(sim.ca_file.read_bytes())
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        async with connect(sim) as client:
            response = await client.get("/version")
        assert response.status_code == 200
        async with httpx.AsyncClient(verify=ssl.create_default_context()) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(sim.url + "/version")
    assert not sim.ca_file.exists()  # removed on exit


async def test_plain_http_when_tls_is_off(sim: Simulator, connect: Connect) -> None:
    assert sim.url.startswith("http://")
    assert sim.ca_file is None
    async with connect(sim) as client:
        assert (await client.get("/version")).status_code == 200
