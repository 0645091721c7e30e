"""The production shape, measured: `openvle api` and two `openvle worker` processes on
MariaDB, Redis and the MongoDB-wire server, against the embedded mode (one `openvle api`
process on SQLite, jobs in process) deploying and archiving the same event, in one run.

Each shape gets a fresh simulator (PVE 9.1, HTTPS, demo seed, time scale
BENCH_TIME_SCALE = 0.1: a linked clone 0.08 s, a start 0.3 s), served from a thread of
this process, which counts every request it answers per endpoint. The services are
real subprocesses set up as an operator does: `openvle migrate`, `openvle sync` (the
templates), `openvle token create bench --scope admin`, then `openvle api` (and the
workers). Through the REST API with that token: an event of BENCH_PARTICIPANTS (150)
participants x 2 templates (Debian and Ubuntu, linked clones on shared ceph: 300 VMs)
is created, deployed (`POST /events/{id}/deploy`, timed until the operation ends) and
archived (`POST /events/{id}/archive`).

Per shape: VMs/min of the deploy, VMs not running after it (`failed`), the archive's
seconds, the Proxmox requests per deployed VM (deploy phase; the periodic sync's
requests in that window included) with a per-endpoint table, the CPU seconds of the
service processes per VM (deploy + archive, from /proc/<pid>/stat; MariaDB, Redis and
nx-27017 not included) and each process's peak RSS (/proc/<pid>/status VmHWM).
Ends with one JSON line. Environment: BENCH_PARTICIPANTS, BENCH_TIME_SCALE,
BENCH_WORKERS (2), BENCH_EVENTS (1: the participants split over that many events,
deployed and archived at once), BENCH_SHAPES (`stack,embedded`), BENCH_MARIADB
(root@127.0.0.1:3306), BENCH_REDIS (redis://127.0.0.1:6379; a free database index 1-15
is claimed), BENCH_TOP (endpoints shown, 12), BENCH_SERVICE_ENV (`K=V K=V`: settings
given to every service process of both shapes, e.g. `WORKER_CLONES_PER_STORAGE=16`),
BENCH_STACK_ENV (the same, for the stack's processes only, e.g. `WORKER_MAX_JOBS=1`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from openvle_pvesim.harness import SimulatorThread, start_in_thread

SCALE = float(os.environ.get("BENCH_TIME_SCALE", "0.1"))
AGENT_FIRST_POLL = 20.0  # WORKER_AGENT_IP_FIRST_POLL's default, for a real cluster
PARTICIPANTS = int(os.environ.get("BENCH_PARTICIPANTS", "150"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "1"))
SHAPES = [s for s in os.environ.get("BENCH_SHAPES", "stack,embedded").split(",") if s]
MARIADB = os.environ.get("BENCH_MARIADB", "root@127.0.0.1:3306")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
TOP = int(os.environ.get("BENCH_TOP", "12"))
SERVICE_ENV = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_SERVICE_ENV", "").split())
STACK_ENV = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_STACK_ENV", "").split())
TOKEN_ID = "openvle@pve!ci"
POOL = "OpenVLE-VMs"
TEMPLATES = ("debian-12-template", "ubuntu-2404-template")
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the simulator, counting what it answers ------------------------------------------

_VMID = re.compile(r"^\d+$")


def endpoint(method: str, target: str) -> str:
    """`GET /nodes/{node}/qemu/{vmid}/config`: the request with its names taken out."""
    path = target.partition("?")[0].removeprefix("/api2/json")
    parts = path.strip("/").split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        before = parts[i - 1] if i else ""
        if before == "nodes":
            out.append("{node}")
        elif before == "tasks":
            out.append("{upid}")
        elif before in {"storage", "pools", "resources"} and i == len(parts) - 1:
            out.append("{id}")
        elif _VMID.match(part):
            out.append("{vmid}")
        else:
            out.append(part)
    return f"{method} /{'/'.join(out)}"


@dataclass
class CountingSimulator:
    """A simulator in a thread whose requests are counted per endpoint."""

    thread: SimulatorThread
    info: dict[str, Any]
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def snapshot(self) -> collections.Counter[str]:
        return collections.Counter(self.thread.call(lambda: dict(self.counts)))


def start_simulator() -> CountingSimulator:
    thread = start_in_thread(time_scale=SCALE, tls=True)
    sim = thread.__enter__()
    info = {"hostname": sim.hostname, "secret": sim.tokens[TOKEN_ID], "ca": str(sim.ca_file)}
    counting = CountingSimulator(thread, info)
    handle = sim.app.handle

    async def counted(method: str, target: str, headers: Any, body: bytes) -> Any:
        counting.counts[endpoint(method, target)] += 1
        return await handle(method, target, headers, body)

    sim.app.handle = counted  # type: ignore[method-assign]
    return counting


# --- services ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {timeout:.0f} s")


def start_mongo(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """nx-27017 (the MongoDB wire protocol on SQLite) on a free port."""
    exe = shutil.which("nx-27017") or str(BIN / "nx-27017")
    port = free_port()
    args = [exe, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(workdir / "nx")]
    args += ["--pid-file", str(workdir / "nx.pid"), "--log-file", str(workdir / "nx.log")]
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port, proc, "nx-27017")
    return proc, f"mongodb://127.0.0.1:{port}/"


async def mariadb(sql: str) -> None:
    engine = create_async_engine(f"mysql+asyncmy://{MARIADB}/")
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def claim_redis() -> tuple[str, str]:
    """A Redis database index of our own (claimed with SET NX, empty); (url, token)."""
    token = secrets.token_hex(8)
    for index in range(15, 0, -1):
        client = Redis.from_url(f"{REDIS}/{index}")
        try:
            claimed = await client.set("openvle:bench:claim", token, nx=True, ex=6 * 3600)
            if claimed and await client.dbsize() == 1:
                return f"{REDIS}/{index}", token
            if claimed:
                await client.delete("openvle:bench:claim")
        finally:
            await client.aclose()
    raise SystemExit("no free Redis database index (1-15)")


async def flush_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def base_env(sim: CountingSimulator, workdir: Path) -> dict[str, str]:
    user, _, name = TOKEN_ID.partition("!")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PVE_", "WORKER_", "API_"))}
    for key in ("DATABASE_URL", "REDIS_URL", "MONGODB_URL", "MONGODB_DATABASE"):
        env.pop(key, None)
    env.update(
        PVE_HOSTNAME=sim.info["hostname"],
        PVE_USER=user,
        PVE_TOKEN_NAME=name,
        PVE_TOKEN_VALUE=sim.info["secret"],
        PVE_VERIFY_SSL=sim.info["ca"],
        PVE_VMS_POOL=POOL,
        WORKER_RETRY_BACKOFF_SCALE=str(SCALE),
        # the simulated guests lease their address in 15 s x SCALE: the first agent read
        # waits the default 20 s scaled the same way (as `openvle demo` and deploy.py do)
        WORKER_AGENT_IP_FIRST_POLL=str(AGENT_FIRST_POLL * SCALE),
        LOG_LEVEL="WARNING",
        BENCH_WORKDIR=str(workdir),  # the processes' cwd: no stray .env is read
    )
    env.update(SERVICE_ENV)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    """Run `openvle ARGS` to its end; its stdout."""
    done = subprocess.run(
        [str(BIN / "openvle"), *args],
        env=env,
        cwd=env["BENCH_WORKDIR"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"openvle {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Service:
    label: str
    proc: subprocess.Popen[bytes]
    log: Path


def spawn(env: dict[str, str], label: str, workdir: Path, *args: str) -> Service:
    log = workdir / f"{label}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "openvle"), *args],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Service(label, proc, log)


def stop(services: list[Service]) -> None:
    for s in services:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in services:
        try:
            s.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- the event, through the REST API ------------------------------------------------------


def ok(response: httpx.Response) -> httpx.Response:
    """The response, or SystemExit with its problem+json."""
    if response.is_error:
        raise SystemExit(f"{response.request.method} {response.url}: {response.text}")
    return response


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"openvle api exited with {proc.returncode}")
        try:
            if (await client.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("openvle api never became ready")


async def follow(client: httpx.AsyncClient, label: str, op_id: str) -> dict[str, Any]:
    """Poll the operation until it ends (progress printed every few seconds)."""
    shown = 0.0
    while True:
        op = ok(await client.get(f"/api/v1/operations/{op_id}")).json()
        if op["state"] in {"succeeded", "failed"}:
            return dict(op)
        if time.monotonic() - shown > 5.0:
            shown = time.monotonic()
            progress = op["progress"]
            print(f"  {label}: {progress.get('done')}/{progress.get('total')}", flush=True)
        await asyncio.sleep(0.25)


@dataclass
class Figures:
    deploy_s: float = 0.0
    archive_s: float = 0.0
    running: int = 0
    deploy_requests: collections.Counter[str] = field(default_factory=collections.Counter)
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)


async def deploy_all(
    client: httpx.AsyncClient, label: str, event_ids: list[str], action: str
) -> list[dict[str, Any]]:
    """POST the action of every event at once, follow each operation to its end."""
    ops = [ok(await client.post(f"/api/v1/events/{e}/{action}")).json() for e in event_ids]
    names = [f"{label} {action}" + (f" {i + 1}" if len(ops) > 1 else "") for i in range(len(ops))]
    pairs = zip(names, ops, strict=True)
    return list(await asyncio.gather(*(follow(client, n, op["id"]) for n, op in pairs)))


async def run_event(
    sim: CountingSimulator, api_url: str, token: str, services: list[Service], label: str
) -> Figures:
    """Create the event(s), deploy, archive; the figures of this shape."""
    figures = Figures()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60.0) as client:
        await wait_ready(client, services[0].proc)
        templates = ok(await client.get("/api/v1/templates")).json()
        items = templates["items"] if isinstance(templates, dict) else templates
        ids = [t["id"] for name in TEMPLATES for t in items if t["name"] == name]
        assert len(ids) == len(TEMPLATES), f"templates not synced: {items}"
        start = datetime.now(UTC) + timedelta(days=1)
        event_ids = []
        for i in range(EVENTS):
            body = {
                "slug": f"b{i}-{label[:5]}",
                "name": f"Benchmark {label} {i}",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=8)).isoformat(),
                "participants": PARTICIPANTS // EVENTS,
                "template_ids": ids,
            }
            event_ids.append(ok(await client.post("/api/v1/events", json=body)).json()["id"])
        cpu0 = {s.label: cpu_seconds(s.proc.pid) for s in services}
        before = sim.snapshot()
        started = time.perf_counter()
        ops = await deploy_all(client, label, event_ids, "deploy")
        figures.deploy_s = time.perf_counter() - started
        figures.deploy_requests = sim.snapshot() - before
        figures.states["deploy"] = ",".join(op["state"] for op in ops)
        for event_id in event_ids:
            view = ok(await client.get(f"/api/v1/events/{event_id}")).json()
            figures.running += int(view["vm_counts"].get("running", 0))
        print(
            f"{label}: deploy {figures.states['deploy']} in {figures.deploy_s:.1f} s, "
            f"{figures.running} running",
            flush=True,
        )
        started = time.perf_counter()
        ops = await deploy_all(client, label, event_ids, "archive")
        figures.archive_s = time.perf_counter() - started
        figures.states["archive"] = ",".join(op["state"] for op in ops)
        print(f"{label}: archive {figures.states['archive']} in {figures.archive_s:.1f} s")
        for s in services:
            figures.cpu_s[s.label] = round(cpu_seconds(s.proc.pid) - cpu0[s.label], 2)
            figures.peak_rss_mb[s.label] = peak_rss_mb(s.proc.pid)
    return figures


def prepare(env: dict[str, str]) -> str:
    """migrate, sync (the templates), an admin token; returns the token."""
    cli(env, "migrate")
    cli(env, "sync", "--json")
    return cli(env, "token", "create", "bench", "--scope", "admin").strip().splitlines()[-1]


async def bench_stack(workdir: Path) -> Figures:
    """api + BENCH_WORKERS workers on MariaDB, Redis and nx-27017."""
    sim = start_simulator()
    database = f"openvle_bench_stack_{secrets.token_hex(4)}"
    await mariadb(f"CREATE DATABASE {database}")
    redis_url, _ = await claim_redis()
    mongo, mongo_url = start_mongo(workdir)
    services: list[Service] = []
    try:
        env = base_env(sim, workdir)
        env.update(
            DATABASE_URL=f"mysql+asyncmy://{MARIADB}/{database}",
            REDIS_URL=redis_url,
            MONGODB_URL=mongo_url,
            MONGODB_DATABASE=database,
        )
        env.update(STACK_ENV)
        token = prepare(env)
        port = free_port()
        services.append(spawn(env, "api", workdir, "api", "--port", str(port)))
        for i in range(WORKERS):
            services.append(spawn(env, f"worker{i + 1}", workdir, "worker"))
        wait_port(port, services[0].proc, "openvle api")
        return await run_event(sim, f"http://127.0.0.1:{port}", token, services, "stack")
    finally:
        stop(services)
        mongo.terminate()
        mongo.wait(timeout=10)
        await flush_redis(redis_url)
        await mariadb(f"DROP DATABASE IF EXISTS {database}")
        sim.thread.__exit__(None, None, None)


async def bench_embedded(workdir: Path) -> Figures:
    """One `openvle api` on SQLite, jobs in process (the embedded default)."""
    sim = start_simulator()
    services: list[Service] = []
    try:
        env = base_env(sim, workdir)
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'embedded.sqlite3'}"
        token = prepare(env)
        port = free_port()
        services.append(spawn(env, "api", workdir, "api", "--port", str(port)))
        wait_port(port, services[0].proc, "openvle api")
        return await run_event(sim, f"http://127.0.0.1:{port}", token, services, "embedded")
    finally:
        stop(services)
        sim.thread.__exit__(None, None, None)


# --- report -----------------------------------------------------------------------------


def summary(figures: Figures) -> dict[str, Any]:
    vms = PARTICIPANTS // EVENTS * EVENTS * len(TEMPLATES)
    requests = sum(figures.deploy_requests.values())
    return {
        "vms_per_min": round(figures.running / figures.deploy_s * 60.0, 1),
        "deploy_s": round(figures.deploy_s, 1),
        "failed": vms - figures.running,
        "archive_s": round(figures.archive_s, 1),
        "requests_per_vm": round(requests / max(figures.running, 1), 1),
        "cpu_s_per_vm": round(sum(figures.cpu_s.values()) / vms, 3),
        "cpu_s": figures.cpu_s,
        "peak_rss_mb": figures.peak_rss_mb,
        "states": figures.states,
    }


def endpoint_table(shapes: dict[str, Figures]) -> None:
    names = list(shapes)
    total: collections.Counter[str] = collections.Counter()
    for f in shapes.values():
        total.update(f.deploy_requests)
    print(f"\nProxmox requests per deployed VM (deploy phase), top {TOP}:")
    print(f"  {'endpoint':<58}" + "".join(f"{n:>10}" for n in names))
    for key, _ in total.most_common(TOP):
        cells = "".join(
            f"{shapes[n].deploy_requests[key] / max(shapes[n].running, 1):>10.2f}" for n in names
        )
        print(f"  {key:<58}{cells}")


def main() -> None:
    benches: dict[str, Callable[[Path], Awaitable[Figures]]] = {
        "stack": bench_stack,
        "embedded": bench_embedded,
    }
    shapes: dict[str, Figures] = {}
    for shape in SHAPES:
        with tempfile.TemporaryDirectory(prefix=f"bench-{shape}-") as tmp:
            try:
                shapes[shape] = asyncio.run(benches[shape](Path(tmp)))
            except BaseException:
                for log in sorted(Path(tmp).glob("*.log")):
                    print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
                raise
    endpoint_table(shapes)
    out: dict[str, Any] = {"vms": PARTICIPANTS // EVENTS * EVENTS * len(TEMPLATES)}
    out.update(time_scale=SCALE, workers=WORKERS, events=EVENTS)
    out.update(service_env=SERVICE_ENV, stack_env=STACK_ENV)
    for name, figures in shapes.items():
        for key, value in summary(figures).items():
            out[f"{name}_{key}"] = value
    if "stack" in shapes and "embedded" in shapes:
        out["stack_vs_embedded"] = round(
            out["stack_vms_per_min"] / max(out["embedded_vms_per_min"], 0.1), 2
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
