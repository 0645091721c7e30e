"""REST API throughput: GET /api/v1/vms/{id}, a page of GET /api/v1/vms, a bare endpoint.

Builds an embedded-default database (SQLite) with BENCH_VMS (10,000) VMs and an admin
token, then serves the real app with uvicorn in a separate process (one worker, as
`openvle api` runs it), with one extra route, GET /bench/bare, that returns a constant
from the same app and server. A small keep-alive HTTP/1.1 load generator (raw asyncio
streams, so the client costs little CPU) keeps BENCH_CONCURRENCY requests in flight
for BENCH_SECONDS per measurement; the three targets alternate for BENCH_ROUNDS rounds
after a warm-up and the median round is reported. Every response must be 200.
BENCH_DATABASE_URL runs it on another (empty) database, e.g. MariaDB.
Prints progress lines, then one JSON line: vm_rps, vm_p99_ms, list_rps, list_p99_ms,
bare_rps, bare_p99_ms, vm_vs_bare.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VMS = int(os.environ.get("BENCH_VMS", "10000"))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL")  # an empty database; default: SQLite
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))


async def prepare(url: str) -> tuple[str, str]:
    """Migrate, insert the VMs and a token; return (a VM id from the middle, token)."""
    from openvle_core.db.enums import TokenScope
    from openvle_core.db.migrate import upgrade_to_head
    from openvle_core.db.models import Template, Vm
    from openvle_core.db.session import create_engine, session_factory, transaction
    from openvle_core.tokens.service import create_token
    from openvle_core.vms.repository import VmRepository

    await upgrade_to_head(url)
    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            template = Template(vmid=9000, name="debian-12", node="pve1", cores=2)
            session.add(template)
            await session.flush()
            vms = [
                Vm(
                    vmid=10_000 + i,
                    name=f"bench-{i:05d}",
                    node=f"pve{i % 3 + 1}",
                    template_id=template.id,
                    status="running",
                    ipv4=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                )
                for i in range(VMS)
            ]
            await VmRepository(session).add_many(vms)
            _, token = await create_token(session, "bench", TokenScope.ADMIN)
        return vms[VMS // 2].id, token
    finally:
        await engine.dispose()


def serve(port: int) -> None:
    """Server mode (a subprocess): the app from the environment, plus /bench/bare."""
    import uvicorn

    from openvle_api.app import create_app
    from openvle_core.settings import load_settings

    app = create_app(load_settings(env_file=None))

    async def bare() -> dict[str, bool]:
        return {"ok": True}

    app.add_api_route("/bench/bare", bare, include_in_schema=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def one_connection(port: int, request: bytes, until: float, latencies: list[float]) -> int:
    """Send `request` over one keep-alive connection until `until`; count the answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    count = 0
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head[:80]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            count += 1
    finally:
        writer.close()
    return count


async def measure(port: int, path: str, token: str, seconds: float) -> tuple[float, float]:
    """(requests/s, p99 ms) with CONCURRENCY connections for `seconds`."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    start = time.perf_counter()
    until = start + seconds
    counts = await asyncio.gather(
        *(one_connection(port, request, until, latencies) for _ in range(CONCURRENCY))
    )
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return sum(counts) / elapsed, p99


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until /health/live answers."""
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("the API server exited")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        ok = (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()
        if ok:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("the API server did not become ready")


async def run(port: int, vm_id: str, token: str) -> dict[str, Any]:
    """Warm up, then alternate the three targets for ROUNDS rounds; medians."""
    targets = {"bare": "/bench/bare", "vm": f"/api/v1/vms/{vm_id}", "list": "/api/v1/vms"}
    for path in targets.values():
        await measure(port, path, token, 0.5)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    for round_no in range(ROUNDS):
        for name, path in targets.items():
            rps, p99 = await measure(port, path, token, SECONDS)
            results[name].append((rps, p99))
            print(f"round {round_no + 1} {name:5s} {rps:8.0f} req/s  p99 {p99:6.2f} ms", flush=True)
    out: dict[str, Any] = {}
    for name, rows in results.items():
        out[f"{name}_rps"] = round(statistics.median(r for r, _ in rows), 1)
        out[f"{name}_p99_ms"] = round(statistics.median(p for _, p in rows), 2)
    out["vm_vs_bare"] = round(out["vm_rps"] / out["bare_rps"], 3)
    return out


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    """Prepare the database, start the server, measure, print the JSON line."""
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = DATABASE_URL or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        vm_id, token = asyncio.run(prepare(url))
        print(f"database ready: {VMS} VMs", flush=True)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "WORKER_PVE_PERIODIC_INTERVAL": "3600",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)
        env.pop("MONGODB_URL", None)
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
        try:
            asyncio.run(wait_ready(port, proc))
            result = asyncio.run(run(port, vm_id, token))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
