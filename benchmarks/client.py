"""Throughput of GET status/current: our client vs bare httpx vs proxmoxer in threads.

Starts the simulator (PVE 9.1, HTTPS with its own CA, instant tasks) in a separate
process so the server does not share this process's GIL, then sends REQUESTS GETs of a
pool VM's status/current with CONCURRENCY in flight, in one run:

- client: `ProxmoxClient.vm_status` as the service builds it (`build_http_client`, which
  sends through `http.pool.KeepAliveTransport`);
- httpx: bare `httpx.AsyncClient` with httpx's own transport (httpcore), the same TLS,
  timeouts and limits, decoding the JSON body;
- proxmoxer: `ProxmoxAPI` (requests) in CONCURRENCY threads;
- two more to show where the difference comes from: client_httpcore (our client on
  httpx's own transport, PVE_HTTP_TRANSPORT=httpcore) and httpx_keepalive (bare httpx
  on our transport).

The contenders alternate for ROUNDS rounds (after one warm-up round each) and the median
is reported, so neither the order nor a noisy moment favours one of them. Besides
requests per second, the CPU time per request of the client process (the cost the client
itself adds) and of the simulator process (Linux /proc; to show which side is the
bottleneck) are reported.
Prints progress lines, then one JSON line: client_rps, httpx_rps, proxmoxer_rps,
client_httpcore_rps, httpx_keepalive_rps, the ratios, *_cpu_us_per_req and
*_sim_cpu_us_per_req.
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
    return ProxmoxSettings(
        **ProxmoxSettings.values_for(
            info["hostname"], TOKEN_ID, info["tokens"][TOKEN_ID], info["ca_file"]
        )
    )


Figures = tuple[float, float]
"""(requests per second, client CPU microseconds per request)."""
COUNT = REQUESTS // CONCURRENCY * CONCURRENCY


def figures(started: float, cpu_started: float) -> Figures:
    """Throughput and this process's CPU per request since the two start marks."""
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return COUNT / wall, cpu / COUNT * 1e6


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of process `pid` (from /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_concurrently(one: Callable[[], Awaitable[object]]) -> Figures:
    """REQUESTS calls of `one` by CONCURRENCY workers."""
    per_worker = REQUESTS // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            await one()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return figures(started, cpu_started)


def on_httpcore(settings: ProxmoxSettings) -> ProxmoxSettings:
    """The same settings with PVE_HTTP_TRANSPORT=httpcore (httpx's own transport)."""
    return settings.model_copy(update={"http_transport": "httpcore"})


async def bench_client(settings: ProxmoxSettings) -> Figures:
    """Through ProxmoxClient.vm_status (pool guard, typed model, retries, metrics hooks)."""
    async with build_http_client(settings) as http:
        client = ProxmoxClient(http, settings)
        await client.cluster_resources("vm")  # warm-up: fills the pool membership cache

        async def one() -> object:
            return await client.vm_status(NODE, VMID)

        return await run_concurrently(one)


async def bench_httpx(settings: ProxmoxSettings) -> Figures:
    """Bare httpx with the AsyncClient settings of `settings`, decoding the JSON body."""
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


Sample = tuple[float, float, float]
"""Figures plus the simulator's CPU microseconds per request."""


def measure(settings: ProxmoxSettings, sim_pid: int) -> dict[str, list[Sample]]:
    """One warm-up round each, then ROUNDS alternating rounds of the three contenders."""
    contenders: dict[str, Callable[[], Figures]] = {
        "client": lambda: asyncio.run(bench_client(settings)),
        "httpx": lambda: asyncio.run(bench_httpx(on_httpcore(settings))),
        "proxmoxer": lambda: bench_proxmoxer(settings),
        "client_httpcore": lambda: asyncio.run(bench_client(on_httpcore(settings))),
        "httpx_keepalive": lambda: asyncio.run(bench_httpx(settings)),
    }
    results: dict[str, list[Sample]] = {name: [] for name in contenders}
    for round_no in range(ROUNDS + 1):
        for name, run in contenders.items():
            sim_started = process_cpu(sim_pid)
            rps, cpu_us = run()
            sim_us = (process_cpu(sim_pid) - sim_started) / COUNT * 1e6
            print(
                f"round {round_no} {name:15} {rps:8.1f} req/s {cpu_us:7.1f} us CPU/req"
                f" (simulator {sim_us:5.1f} us CPU/req)"
            )
            if round_no > 0:
                results[name].append((rps, cpu_us, sim_us))
    return results


def main() -> None:
    proc, info = start_simulator()
    try:
        results = measure(settings_for(info), proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rps, cpu, sim = (
        {name: statistics.median(sample[i] for sample in runs) for name, runs in results.items()}
        for i in range(3)
    )
    result = {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        **{f"{name}_rps": round(value, 1) for name, value in rps.items()},
        "client_vs_httpx": round(rps["client"] / rps["httpx"], 3),
        "client_vs_proxmoxer": round(rps["client"] / rps["proxmoxer"], 3),
        "client_httpcore_vs_httpx": round(rps["client_httpcore"] / rps["httpx"], 3),
        "client_vs_httpx_keepalive": round(rps["client"] / rps["httpx_keepalive"], 3),
        **{f"{name}_cpu_us_per_req": round(value, 1) for name, value in cpu.items()},
        **{f"{name}_sim_cpu_us_per_req": round(value, 1) for name, value in sim.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
