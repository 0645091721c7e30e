"""Throughput of GET status/current: our client vs bare httpx vs proxmoxer in threads.

Starts the simulator (PVE 9.1, HTTPS with its own CA, instant tasks) in a separate
process so the server does not share this process's GIL, then sends REQUESTS GETs of a
pool VM's status/current with CONCURRENCY in flight, three ways, in one run. The three
contenders alternate for ROUNDS rounds (after one warm-up round each) and the median is
reported, so neither the order nor a noisy moment favours one of them. Besides requests
per second (bounded by the simulator, which saturates one core), the client process's
CPU time per request is reported: that is the cost the client itself adds.
Prints progress lines, then one JSON line: client_rps, httpx_rps, proxmoxer_rps, the
ratios, and *_cpu_us_per_req.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
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
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
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


Figures = tuple[float, float]
"""(requests per second, client CPU microseconds per request)."""


def figures(started: float, cpu_started: float) -> Figures:
    """Throughput and this process's CPU per request since the two start marks."""
    count = REQUESTS // CONCURRENCY * CONCURRENCY
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return count / wall, cpu / count * 1e6


async def run_concurrently(one: Callable[[], Awaitable[object]]) -> Figures:
    """REQUESTS calls of `one` by CONCURRENCY workers."""
    per_worker = REQUESTS // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            await one()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return figures(started, cpu_started)


async def bench_client(settings: ProxmoxSettings) -> Figures:
    """Through ProxmoxClient.vm_status (pool guard, typed model, retries, metrics hooks)."""
    async with build_http_client(settings) as http:
        client = ProxmoxClient(http, settings)
        await client.cluster_resources("vm")  # warm-up: fills the pool membership cache

        async def one() -> object:
            return await client.vm_status(NODE, VMID)

        return await run_concurrently(one)


async def bench_httpx(settings: ProxmoxSettings) -> Figures:
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


def bench_proxmoxer(settings: ProxmoxSettings) -> Figures:
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

    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for future in [pool.submit(worker) for _ in range(CONCURRENCY)]:
            future.result()
    return figures(started, cpu_started)


def measure(settings: ProxmoxSettings) -> dict[str, list[Figures]]:
    """One warm-up round each, then ROUNDS alternating rounds of the three contenders."""
    contenders: dict[str, Callable[[], Figures]] = {
        "client": lambda: asyncio.run(bench_client(settings)),
        "httpx": lambda: asyncio.run(bench_httpx(settings)),
        "proxmoxer": lambda: bench_proxmoxer(settings),
    }
    results: dict[str, list[Figures]] = {name: [] for name in contenders}
    for round_no in range(ROUNDS + 1):
        for name, run in contenders.items():
            rps, cpu_us = run()
            print(f"round {round_no} {name:9} {rps:8.1f} req/s {cpu_us:7.1f} us CPU/req")
            if round_no > 0:
                results[name].append((rps, cpu_us))
    return results


def main() -> None:
    proc, info = start_simulator()
    try:
        results = measure(settings_for(info))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rps = {name: statistics.median(r for r, _ in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in results.items()}
    result = {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "client_rps": round(rps["client"], 1),
        "httpx_rps": round(rps["httpx"], 1),
        "proxmoxer_rps": round(rps["proxmoxer"], 1),
        "client_vs_httpx": round(rps["client"] / rps["httpx"], 3),
        "client_vs_proxmoxer": round(rps["client"] / rps["proxmoxer"], 3),
        "client_cpu_us_per_req": round(cpu["client"], 1),
        "httpx_cpu_us_per_req": round(cpu["httpx"], 1),
        "proxmoxer_cpu_us_per_req": round(cpu["proxmoxer"], 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
