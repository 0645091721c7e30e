"""Benchmark: the periodic sync at 10,000 pool VMs, against one fetch of the resources and
a naive per-VM loop.

Starts the simulator in its own process (PVE 9.1, HTTPS, instant tasks, a stats round
every `--stats-interval` s: 10, pvestatd's period; the simulator's default at time scale
0, a round every 0.05 s, would keep a fifth of its CPU busy and hold requests back
between its slices, ~20 ms each at 12,000 VMs, where PVE's API daemons never wait for
pvestatd) with the demo
templates, VMS linked clones in the OpenVLE pool (every 4th running) and OUTSIDE VMs in
another pool (written into a JSON seed, since `--vms` only fills our pool), plus the
MongoDB-wire server (nx-27017) and a fresh MariaDB database migrated to head. The DB
knows every pool VM as the engine and earlier syncs left them (node, status, the
identity evidence read from each VM's config, the running ones mostly with their IPv4).
The syncs run in a child process built like a worker (`open_runtime`, the periodic
`sync_tick`, nothing else in it), which reports each sync's wall and CPU time and, at
the end, its peak RSS. Then, in one run:

1. `first_sync_s`: the first sync of a fresh snapshot store (the snapshot is written, the
   templates are imported, a few VMs get an IPv4 through the guest agent, each after
   its identity was confirmed, and the sweep confirms 25 more).
2. `changed_sync_s`: the median over ROUNDS of a sync after CHANGED of the pool VMs were
   changed behind OpenVLE's back (40% started, 40% stopped, 20% migrated) through the
   admin token and the stats tick passed; each changed VM's config is read once to
   confirm its identity before its row changes (`changed_sync_identity_checks`). The
   VMs just started are not asked for their IPv4 yet (up for less than
   WORKER_AGENT_IP_FIRST_POLL, 20 s: `changed_sync_ip_deferred`); the rounds after
   20 s ask them (`changed_sync_ip_lookups`, per round).
3. `resources_fetch_s`: the floor any sync pays, one GET /cluster/resources?type=vm
   fetched and JSON-parsed by a bare httpx client (the sync's token, one connection
   kept open), median of FETCHES before each changed sync; `changed_sync_over_fetch` is
   changed_sync_s / resources_fetch_s (target: at most 2.0).
4. `worker_peak_rss_mb`: the sync process's peak RSS (VmHWM) over the first sync and
   every changed sync (target: at most 150 MB); `worker_start_rss_mb` is its RSS once
   the runtime was open, before any sync; `worker_peak_rss_by_round_mb`: the peak after
   each changed sync (a worker runs for weeks: it must level off; run `--rounds 25`).
   (`ru_maxrss` would report this process's RSS when it started the worker: Linux
   carries it over fork and exec.)
5. `baseline_s`: what a proxmoxer loop does: per VM, GET status/current, then UPDATE its
   row and commit. Timed on BASELINE_SAMPLE VMs and extrapolated linearly to all of them
   (the output says so); the same run, the same servers.

Prints progress, then one JSON line with the figures and the counts behind them;
changed_sync_cpu_s is the worker's CPU time during a changed sync (median), which a busy
machine inflates less than the wall time; `load_average` is the 1-minute load when the
run ended. `--profile FILE` writes a cProfile of the changed syncs (in the worker);
`--phases` prints when each phase of a sync ran (`--trace-memory`: and the Python memory
traced after it, tracemalloc; the timings are then not comparable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from proxmoxer import ProxmoxAPI
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from _sync_worker import settings_for  # benchmarks/: the sync worker's own script
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Vm
from openvle_core.db.session import create_engine, session_factory
from openvle_core.db.types import new_id, utcnow
from openvle_core.guests.identity import Evidence, Marks, meta_ctime
from openvle_core.proxmox import ProxmoxClient, build_http_client
from openvle_core.proxmox.models import ClusterResource
from openvle_pvesim import seeds
from openvle_pvesim.cluster import Cluster, NoFaults

MARIADB = "mysql+asyncmy://root@127.0.0.1:3306"
POOL = seeds.OPENVLE_POOL
ADMIN = seeds.ADMIN_TOKEN
# A token that sees the whole cluster, so the VMs outside the pool are in the answer and
# the sync must filter them out (the CI token would not even be shown them).
SYNC_TOKEN, SYNC_SECRET = "bench@pve!sync", secrets.token_hex(16)
NODES = ("pve1", "pve2", "pve3")
IP_LOOKUPS_IN_FIRST_SYNC = 200


def write_seed(path: Path, outside: int) -> None:
    """The demo seed plus `outside` VMs in the Other-Team pool (every 4th running)."""
    cluster = Cluster("9.1", 0.0, NoFaults(), random.Random(0))
    spec = seeds.demo_spec(cluster)
    base = seeds.TEMPLATES[0]
    for i in range(outside):
        vmid = 30000 + i
        config = seeds.template_config(cluster, (vmid, f"ot-lab-{i:05d}", *base[2:]))
        config.pop("template")
        config["scsi0"] = f"ceph:vm-{vmid}-disk-0,iothread=1,size=20G"
        vm = {"vmid": vmid, "node": NODES[i % 3], "pool": "Other-Team", "config": config}
        spec["vms"].append(vm | {"running": i % 4 == 0})
    path.write_text(json.dumps(spec))


def start_process(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run the simulator; return it and its start-up line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openvle_pvesim", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("simulator did not start")
    return proc, json.loads(line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mongo(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """nx-27017 on a free port with its data in `workdir`."""
    exe = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    port = free_port()
    args = [exe, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(workdir / "nx")]
    args += ["--pid-file", str(workdir / "nx.pid"), "--log-file", str(workdir / "nx.log")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"mongodb://127.0.0.1:{port}/"
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("nx-27017 did not start")


async def mariadb(sql: str) -> None:
    engine = create_engine(f"{MARIADB}/?charset=utf8mb4")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def evidence(admin: httpx.AsyncClient, guests: list[ClusterResource]) -> dict[int, Any]:
    """vmid -> the identity columns the engine records at clone time, from each config."""
    gate = asyncio.Semaphore(32)

    async def one(guest: ClusterResource) -> tuple[int, Any]:
        async with gate:
            reply = await admin.get(f"/nodes/{guest.node}/qemu/{guest.vmid}/config")
        config = reply.raise_for_status().json()["data"]
        marks = Marks(vmgenid=config.get("vmgenid"), ctime=meta_ctime(config.get("meta")))
        return int(guest.vmid or 0), Evidence.of(marks).columns()

    return dict(await asyncio.gather(*(one(g) for g in guests)))


async def seed_db(
    sessions: async_sessionmaker[AsyncSession],
    guests: list[ClusterResource],
    made: dict[int, Any],
) -> None:
    """A row per pool clone as the engine left it (node, status, evidence); the running
    ones with an IPv4 but a few."""
    clones = [g for g in guests if not g.template and g.vmid is not None]
    running = [g for g in clones if g.status == "running"]
    lacking = {g.vmid for g in running[:IP_LOOKUPS_IN_FIRST_SYNC]}
    rows = [
        {
            "id": new_id(),
            "vmid": g.vmid,
            "name": g.name,
            "node": g.node,
            "status": g.status,
            "ipv4": None
            if g.status != "running" or g.vmid in lacking
            else f"10.99.{i >> 8 & 255}.{i & 255}",
            "created_at": utcnow(),
            "updated_at": utcnow(),
            **made[int(g.vmid or 0)],
        }
        for i, g in enumerate(clones)
    ]
    async with sessions() as session, session.begin():
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Vm), rows[start : start + 2000])


async def change_some(
    admin: httpx.AsyncClient, guests: list[ClusterResource], count: int, rng: random.Random
) -> None:
    """Start, stop and migrate `count` pool clones through the admin token (40/40/20 %)."""
    clones = [g for g in guests if not g.template]
    stopped = [g for g in clones if g.status == "stopped"]
    running = [g for g in clones if g.status == "running"]
    starts, stops = rng.sample(stopped, count * 2 // 5), rng.sample(running, count * 2 // 5)
    moves = rng.sample([g for g in stopped if g not in starts], count - len(starts) - len(stops))
    calls: list[tuple[ClusterResource, str, dict[str, str]]] = [
        *((g, "status/start", {}) for g in starts),
        *((g, "status/stop", {}) for g in stops),
    ]
    calls += [(g, "migrate", {"target": next(n for n in NODES if n != g.node)}) for g in moves]
    expected: dict[int, tuple[str, str]] = {}
    for guest, action, data in calls:
        response = await admin.post(f"/nodes/{guest.node}/qemu/{guest.vmid}/{action}", data=data)
        response.raise_for_status()
        status = {"status/start": "running", "status/stop": "stopped"}.get(action, "stopped")
        expected[int(guest.vmid or 0)] = (status, data.get("target", guest.node or ""))
    await until_visible(admin, expected)


async def until_visible(admin: httpx.AsyncClient, expected: dict[int, tuple[str, str]]) -> None:
    """Wait until /cluster/resources shows every change (tasks done, stats tick passed)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = (await admin.get("/cluster/resources", params={"type": "vm"})).json()["data"]
        seen = {r["vmid"]: (r.get("status"), r.get("node")) for r in data if r["vmid"] in expected}
        if seen == expected:
            return
        await asyncio.sleep(0.2)
    raise SystemExit("the changes did not show in /cluster/resources within 60 s")


async def pool_guests(proxmox: ProxmoxClient) -> list[ClusterResource]:
    """The pool's guests as they are now (outside the timed syncs)."""
    return [g for g in await proxmox.cluster_resources() if g.pool == POOL and g.type == "qemu"]


@dataclass
class Timed:
    """A sync's wall time, the worker's CPU time during it, and its result's counts."""

    seconds: float
    cpu_s: float
    result: dict[str, Any]
    peak_rss_mb: float


class Worker:
    """The child process that runs the syncs, like a worker: one line in, one line out."""

    def __init__(self, config: dict[str, Any]) -> None:
        args = [sys.executable, str(Path(__file__).with_name("_sync_worker.py"))]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.ask(json.dumps(config))

    def ask(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"the sync worker ended (exit code {self.proc.wait(10)})")
        reply: dict[str, Any] = json.loads(answer)
        return reply

    def sync(self) -> Timed:
        reply = self.ask("sync")
        if not reply["result"]["ok"]:
            raise SystemExit(f"sync failed: {reply['result']['error']}")
        if "phases" in reply:
            print(f"  phases: {json.dumps(reply['phases'])}", flush=True)
        return Timed(reply["seconds"], reply["cpu_s"], reply["result"], reply["rss_mb"])

    def close(self) -> dict[str, Any]:
        reply = self.ask("exit")
        self.proc.wait(30)
        return reply


async def fetch_resources(client: httpx.AsyncClient, times: int) -> list[float]:
    """Seconds for each of `times` GET /cluster/resources?type=vm, body JSON-parsed."""
    took = []
    for _ in range(times):
        started = time.perf_counter()
        response = await client.get("/cluster/resources", params={"type": "vm"})
        entries = response.raise_for_status().json()["data"]
        took.append(time.perf_counter() - started)
        assert len(entries) > 0
    return took


async def baseline(
    info: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
    guests: list[ClusterResource],
    sample: int,
) -> float:
    """Seconds for `sample` VMs of the naive loop: status/current, UPDATE, COMMIT each."""
    host, _, port = info["url"].removeprefix("https://").split("/", 1)[0].rpartition(":")
    api = ProxmoxAPI(
        host,
        port=int(port),
        user=SYNC_TOKEN.partition("!")[0],
        token_name=SYNC_TOKEN.partition("!")[2],
        token_value=SYNC_SECRET,
        verify_ssl=info["ca_file"],
        service="PVE",
    )
    async with sessions() as session:
        rows = (await session.execute(text("SELECT vmid, id FROM vms"))).all()
        ids = {int(vmid): str(vm_id) for vmid, vm_id in rows}
    chosen = [g for g in guests if g.vmid in ids][:sample]
    started = time.perf_counter()
    for g in chosen:
        vmid = int(g.vmid or 0)
        current = api.nodes(g.node).qemu(vmid).status.current.get()
        async with sessions() as session, session.begin():
            stmt = (
                update(Vm)
                .where(Vm.id == ids[vmid])
                .values(status=current["status"], node=g.node, updated_at=utcnow())
            )
            await session.execute(stmt)
    return time.perf_counter() - started


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    seed = workdir / "seed.json"
    write_seed(seed, args.outside)
    sim, info = start_process(
        [
            *("--port", "0", "--tls", "--time-scale", "0", "--seed", str(seed)),
            *("--stats-interval", str(args.stats_interval)),
            *("--vms", str(args.vms), "--token", f"{SYNC_TOKEN}={SYNC_SECRET}"),
        ]
    )
    mongo, mongodb = start_mongo(workdir)
    database = f"openvle_bench_{secrets.token_hex(4)}"
    await mariadb(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        return await measure(args, info, f"{MARIADB}/{database}?charset=utf8mb4", mongodb)
    finally:
        await mariadb(f"DROP DATABASE IF EXISTS `{database}`")
        sim.terminate()
        mongo.terminate()
        sim.wait(10)
        mongo.wait(10)


def describe(label: str, timed: Timed) -> None:
    """One progress line for a timed sync."""
    result = timed.result
    print(
        f"{label}: {timed.seconds:.3f} s ({timed.cpu_s:.3f} s CPU in the worker); "
        f"{result['vms_updated']} VMs updated, {result['changes']} changes, "
        f"{result['identity_checks']} identity checks, {result['ip_lookups']} IP lookups "
        f"({result['ip_deferred']} deferred), "
        f"{result['snapshot_written']} snapshot documents written; worker peak RSS "
        f"{timed.peak_rss_mb} MB",
        flush=True,
    )


@dataclass
class Measured:
    """What one run measured."""

    guests: list[ClusterResource]
    first: Timed
    changed: list[Timed]
    fetches: list[float]
    worker: dict[str, Any]
    sample: int
    sample_s: float


async def measure(
    args: argparse.Namespace, info: dict[str, Any], db_url: str, mongodb: str
) -> dict[str, Any]:
    """Seed the DB, then time the first sync, the fetches and changed syncs, the baseline."""
    settings = settings_for(info, db_url, mongodb, SYNC_TOKEN, SYNC_SECRET, POOL)
    await upgrade_to_head(db_url)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    verify = httpx.create_ssl_context(verify=info["ca_file"])
    headers = {"Authorization": f"PVEAPIToken={ADMIN}={info['tokens'][ADMIN]}"}
    admin = httpx.AsyncClient(base_url=info["url"], headers=headers, verify=verify, timeout=30)
    bare = httpx.AsyncClient(
        base_url=info["url"],
        headers={"Authorization": f"PVEAPIToken={SYNC_TOKEN}={SYNC_SECRET}"},
        verify=verify,
        timeout=30,
    )
    async with build_http_client(settings.proxmox) as http, admin, bare:
        proxmox = ProxmoxClient(http, settings.proxmox)
        guests = await pool_guests(proxmox)
        total = len(await proxmox.cluster_resources("vm"))
        print(f"simulator: {total} guests, {len(guests)} in {POOL}; seeding MariaDB", flush=True)
        clones = [g for g in guests if not g.template]
        await seed_db(sessions, guests, await evidence(admin, clones))
        config = {"info": info, "database": db_url, "mongodb": mongodb, "profile": args.profile}
        config |= {"phases": args.phases or args.trace_memory, "trace_memory": args.trace_memory}
        config |= {"token": SYNC_TOKEN, "secret": SYNC_SECRET, "pool": POOL}
        worker = Worker(config)
        print(f"sync worker up: {worker.ready['rss_mb']} MB RSS", flush=True)
        try:
            first = worker.sync()
            describe("first sync", first)
            rng, changed, fetches = random.Random(7), list[Timed](), list[float]()
            count = max(1, round(args.vms * args.changed_fraction))
            for _ in range(args.rounds):
                await change_some(admin, await pool_guests(proxmox), count, rng)
                took = await fetch_resources(bare, args.fetches)
                fetches += took
                print(f"fetch of /cluster/resources: {statistics.median(took):.3f} s", flush=True)
                changed.append(worker.sync())
                describe(f"sync after {count} changes", changed[-1])
        finally:
            closed = worker.close()
        closed["start_rss_mb"] = worker.ready["rss_mb"]
        sample = min(args.baseline_sample, len(guests))
        sample_s = await baseline(info, sessions, await pool_guests(proxmox), sample)
    await engine.dispose()
    return figures(args, Measured(guests, first, changed, fetches, closed, sample, sample_s))


def figures(args: argparse.Namespace, run: Measured) -> dict[str, Any]:
    """The JSON figures; the baseline extrapolated linearly from its sample."""
    clones = len([g for g in run.guests if not g.template])
    baseline_s = run.sample_s * clones / run.sample
    changed_s = statistics.median(t.seconds for t in run.changed)
    fetch_s = statistics.median(run.fetches)
    note = (
        f"measured on {run.sample} of {clones} VMs ({run.sample_s:.2f} s) and extrapolated linearly"
        if run.sample < clones
        else "measured on every VM"
    )
    print(f"baseline: {baseline_s:.2f} s ({note})", flush=True)
    last = run.changed[-1].result
    return {
        "benchmark": "sync",
        "pool_vms": clones,
        "outside_vms": args.outside,
        "resources": last["resources"],
        "first_sync_s": round(run.first.seconds, 3),
        "first_sync_changes": run.first.result["changes"],
        "changed_vms": round(args.vms * args.changed_fraction),
        "changed_sync_s": round(changed_s, 3),
        "changed_sync_rounds_s": [round(t.seconds, 3) for t in run.changed],
        "changed_sync_cpu_s": round(statistics.median(t.cpu_s for t in run.changed), 3),
        "changed_sync_changes": last["changes"],
        "changed_sync_vms_updated": last["vms_updated"],
        "changed_sync_identity_checks": last["identity_checks"],
        "changed_sync_ip_lookups": [t.result["ip_lookups"] for t in run.changed],
        "changed_sync_ip_deferred": [t.result["ip_deferred"] for t in run.changed],
        "resources_fetch_s": round(fetch_s, 3),
        "resources_fetches": len(run.fetches),
        "changed_sync_over_fetch": round(changed_s / fetch_s, 2),
        "changed_sync_over_fetch_target": 2.0,
        "worker_start_rss_mb": run.worker["start_rss_mb"],
        "worker_peak_rss_mb": run.worker["peak_rss_mb"],
        "worker_peak_rss_by_round_mb": [t.peak_rss_mb for t in run.changed],
        "worker_peak_rss_target_mb": 150,
        "baseline_s": round(baseline_s, 2),
        "baseline_note": note,
        "speedup": round(baseline_s / changed_s, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "stats_interval_s": args.stats_interval,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vms", type=int, default=10_000, help="VMs in the OpenVLE pool")
    parser.add_argument("--outside", type=int, default=2_000, help="VMs in another pool")
    parser.add_argument("--changed-fraction", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=5, help="changed syncs (median)")
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=10.0,
        help="seconds between the simulator's stats rounds (10, pvestatd's period; the "
        "simulator's default at time scale 0 is 0.05 s, a fifth of its CPU)",
    )
    parser.add_argument(
        "--fetches", type=int, default=3, help="resource fetches before each changed sync"
    )
    parser.add_argument(
        "--baseline-sample", type=int, default=1_000, help="VMs the naive loop is timed on"
    )
    parser.add_argument("--profile", default=None, help="cProfile the changed syncs into FILE")
    parser.add_argument(
        "--phases", action="store_true", help="print when each phase of every sync ran"
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="with --phases, the Python memory traced after each phase (slows the syncs)",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    strays = stray_servers()
    if strays:  # each takes CPU from the two cores the timed processes share
        print(f"warning: other simulators or nx-27017 are running: {strays}", flush=True)
    with tempfile.TemporaryDirectory(prefix="openvle-bench-sync-") as workdir:
        figures = asyncio.run(run(args, Path(workdir)))
    figures["stray_servers"] = len(strays)
    print(json.dumps(figures))


def stray_servers() -> list[int]:
    """Pids of simulators and nx-27017 servers already running (a probe left behind makes
    the run slower and noisier: its stats rounds keep up to a fifth of a core busy)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"openvle_pvesim" in cmdline or any(part.endswith(b"nx-27017") for part in cmdline):
            found.append(int(proc.name))
    return sorted(found)


if __name__ == "__main__":
    main()
