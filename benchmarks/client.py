"""Throughput of GET status/current: our client vs bare httpx vs proxmoxer in threads.

Starts the simulator (PVE 9.1, HTTPS with its own CA, instant tasks) in a separate
process so the server does not share this process's GIL, then sends REQUESTS GETs of a
pool VM's status/current with CONCURRENCY in flight, three ways, in one run. Prints
progress lines, then one JSON line: client_rps, httpx_rps, proxmoxer_rps and the ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from proxmoxer import ProxmoxAPI
from pydantic import SecretStr

from openvle_core.proxmox import ProxmoxClient, build_http_client
from openvle_core.settings import ProxmoxSettings

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1000"))
CONCURRENCY = 10
TOKEN_ID = "openvle@pve!ci"
NODE, VMID = "pve1", 9000  # a template of the demo seed, in the OpenVLE-VMs pool


def start_simulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run `python -m openvle_pvesim` on a free port; return it and its start-up line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openvle_pvesim", "--port", "0", "--tls", "--time-scale", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("simulator did not start")
    return proc, json.loads(line)


def settings_for(info: dict[str, Any]) -> ProxmoxSettings:
    """Proxmox settings pointing at the simulator with the CI token and its CA."""
    user, _, name = TOKEN_ID.partition("!")
    hostname = info["url"].removeprefix("https://").split("/", 1)[0]
    return ProxmoxSettings(
        hostname=hostname,
        user=user,
        token_name=name,
        token_value=SecretStr(info["tokens"][TOKEN_ID]),
        verify_ssl=info["ca_file"],
    )


async def run_concurrently(one: Callable[[], Awaitable[object]]) -> float:
    """REQUESTS calls of `one` by CONCURRENCY workers; returns requests per second."""
    per_worker = REQUESTS // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return per_worker * CONCURRENCY / (time.perf_counter() - started)


async def bench_client(settings: ProxmoxSettings) -> float:
    """Through ProxmoxClient.vm_status (pool guard, typed model, retries, metrics hooks)."""
    async with build_http_client(settings) as http:
        client = ProxmoxClient(http, settings)
        await client.cluster_resources("vm")  # warm-up: fills the pool membership cache

        async def one() -> object:
            return await client.vm_status(NODE, VMID)

        return await run_concurrently(one)


async def bench_httpx(settings: ProxmoxSettings) -> float:
    """Bare httpx with the same AsyncClient settings, decoding the JSON body."""
    url = f"{settings.base_url}/nodes/{NODE}/qemu/{VMID}/status/current"
    secret = settings.token_value.get_secret_value()
    headers = {"Authorization": f"PVEAPIToken={settings.token_id}={secret}"}
    async with build_http_client(settings) as http:
        await http.get(url, headers=headers)

        async def one() -> object:
            response = await http.get(url, headers=headers)
            response.raise_for_status()
            return response.json()["data"]

        return await run_concurrently(one)


def bench_proxmoxer(settings: ProxmoxSettings) -> float:
    """proxmoxer (requests) with one API object per thread, CONCURRENCY threads."""
    host, _, port = settings.hostname.rpartition(":")
    per_worker = REQUESTS // CONCURRENCY

    def worker() -> None:
        api = ProxmoxAPI(
            host,
            port=int(port),
            user=settings.user,
            token_name=settings.token_name,
            token_value=settings.token_value.get_secret_value(),
            verify_ssl=str(settings.verify_ssl),
            service="PVE",
        )
        for _ in range(per_worker):
            api.nodes(NODE).qemu(VMID).status.current.get()

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for future in [pool.submit(worker) for _ in range(CONCURRENCY)]:
            future.result()
    return per_worker * CONCURRENCY / (time.perf_counter() - started)


def main() -> None:
    proc, info = start_simulator()
    try:
        settings = settings_for(info)
        client_rps = asyncio.run(bench_client(settings))
        print(f"client:    {client_rps:8.1f} req/s", flush=True)
        httpx_rps = asyncio.run(bench_httpx(settings))
        print(f"httpx:     {httpx_rps:8.1f} req/s", flush=True)
        proxmoxer_rps = bench_proxmoxer(settings)
        print(f"proxmoxer: {proxmoxer_rps:8.1f} req/s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    result = {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "client_rps": round(client_rps, 1),
        "httpx_rps": round(httpx_rps, 1),
        "proxmoxer_rps": round(proxmoxer_rps, 1),
        "client_vs_httpx": round(client_rps / httpx_rps, 3),
        "client_vs_proxmoxer": round(client_rps / proxmoxer_rps, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
