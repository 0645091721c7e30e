"""Benchmark: GET /cluster/resources of the simulator with 10,000 VMs.

Starts the simulator in a background thread (plain HTTP, instant tasks), reports how
long the cluster takes to load and the p50/p90 latency of /cluster/resources over
~50 requests with httpx; the baseline in the same run is the p50 of GET /version.
The simulated pvestatd refreshes every VM's stats in the background (with instant tasks
as often as its 20 % CPU cap allows) and a request that arrives meanwhile waits for it;
the `quiet_*` figures repeat the measurement with that refresh paused.
Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from openvle_pvesim import start_in_thread

TOKEN = "root@pam!bench"
SECRET = "bench-secret"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(client: httpx.Client, path: str, rounds: int) -> list[float]:
    """Latencies in milliseconds of `rounds` sequential GETs (after one warm-up)."""
    client.get(path).raise_for_status()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    started = time.perf_counter()
    runner = start_in_thread(vms=args.vms, tls=False, tokens=[f"{TOKEN}={SECRET}"])
    with runner as sim:
        load_s = time.perf_counter() - started
        headers = {"Authorization": f"PVEAPIToken={TOKEN}={SECRET}", "Accept-Encoding": "gzip"}
        with httpx.Client(base_url=sim.url, headers=headers, timeout=30) as client:
            count = len(client.get("/cluster/resources", params={"type": "vm"}).json()["data"])
            baseline = measure(client, "/version", args.rounds)
            resources = measure(client, "/cluster/resources", args.rounds)
            sim.cluster.autotick = False
            quiet = measure(client, "/cluster/resources", args.rounds)
    figures = {
        "benchmark": "pvesim_resources",
        "vms": args.vms,
        "vm_entries": count,
        "load_s": round(load_s, 3),
        "rounds": args.rounds,
        "p50_ms": round(statistics.median(resources), 2),
        "p90_ms": round(percentile(resources, 0.9), 2),
        "quiet_p50_ms": round(statistics.median(quiet), 2),
        "quiet_p90_ms": round(percentile(quiet, 0.9), 2),
        "baseline_version_p50_ms": round(statistics.median(baseline), 2),
    }
    print(
        f"loaded {args.vms} VMs in {load_s:.2f} s; /cluster/resources p50 "
        f"{figures['p50_ms']} ms, p90 {figures['p90_ms']} ms (stats refresh paused: p50 "
        f"{figures['quiet_p50_ms']} ms, p90 {figures['quiet_p90_ms']} ms); /version p50 "
        f"{figures['baseline_version_p50_ms']} ms"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
