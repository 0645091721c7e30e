"""Deploy throughput: an OpenVLE event deploy vs one VM at a time vs 10 proxmoxer threads.

Starts the simulator (PVE 9.1, HTTPS, demo seed) in its own process at a realistic time
scale shrunk by BENCH_TIME_SCALE (default 0.1: a linked clone takes 0.08 s, a start 0.3 s,
a guest's DHCP lease arrives 1.5 s after its start), then does one job three ways against
it, in one run: VMs linked-cloned from the Debian template (shared ceph storage), started,
and their IPv4 known through the guest agent.

- openvle: an event of BENCH_VMS (200) participants deployed through the real service
  (embedded default: SQLite, in-process queue), which also writes SMBIOS and adds HA.
- sequential: one VM at a time (nextid, clone, wait, start, wait, IP), as a single clone
  worker does; timed on BENCH_SEQUENTIAL_VMS (30) VMs, since its rate does not change
  with the count (the output says how many).
- threads10: BENCH_VMS VMs by 10 proxmoxer threads doing the same steps with no lock or
  nextid handling, as a Terraform run with parallelism 10 does; a failed step fails the VM.

Both baselines poll every BASELINE_POLL seconds (faster than real tools, to their
advantage).

The cost for the cluster: the Proxmox requests the openvle deploy sent, per deployed VM
and per endpoint (`requests_per_vm`, `requests_per_vm_by_endpoint`, counted from the
service's own `openvle_proxmox_requests_total`). And whether that cost grows with the
pool: BENCH_POOL_VMS (`--pool-vms N`, default 5000) other VMs are put into the pool of a
second simulator (as `openvle demo --vms N` does), and BENCH_POOL_DEPLOY_VMS (30) VMs are
deployed into the empty pool and into the full one, one after the other
(`pool_deploy_s_empty`, `pool_deploy_s_full`, `pool_slowdown`, and the requests per VM of
each).

BENCH_PROFILE=FILE profiles the openvle deploy (this process: the service's HTTP, SQLite,
queue and models; the simulator runs in its own) with cProfile into FILE (pstats), and
prints its 30 costliest functions (own time) on stderr; BENCH_BASELINES=0 skips the two
baselines (to profile or tune the openvle part alone).

Prints progress lines, then one JSON line with `openvle_vms_per_min`,
`sequential_vms_per_min`, `threads10_vms_per_min`, `openvle_failed`, `sequential_failed`,
`threads10_failed`, the ratios, the request figures and the targets (`targets`: each
with its figure and whether it is met).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from proxmoxer import ProxmoxAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.events import service
from openvle_core.handlers import run_operation
from openvle_core.metrics import PROXMOX_REQUESTS
from openvle_core.proxmox import PollSchedule
from openvle_core.runtime import open_runtime
from openvle_core.settings import (
    ProxmoxSettings,
    Settings,
    load_settings,
)

SCALE = float(os.environ.get("BENCH_TIME_SCALE", "0.1"))
VMS = int(os.environ.get("BENCH_VMS", "200"))
SEQUENTIAL_VMS = int(os.environ.get("BENCH_SEQUENTIAL_VMS", "30"))
POOL_VMS = int(os.environ.get("BENCH_POOL_VMS", "5000"))
POOL_DEPLOY_VMS = int(os.environ.get("BENCH_POOL_DEPLOY_VMS", "30"))
PROFILE = os.environ.get("BENCH_PROFILE", "")
BASELINES = os.environ.get("BENCH_BASELINES", "1") != "0"
BASELINE_POLL = 0.05
AGENT_FIRST_POLL = 20.0  # the service's default WORKER_AGENT_IP_FIRST_POLL, in PVE time
TOKEN_ID = "openvle@pve!ci"
POOL = "OpenVLE-VMs"
TEMPLATE = (9000, "debian-12-template", "pve1")  # linked clones on shared ceph
IGNORED_PREFIXES = ("127.", "169.254.", "172.17.")
T = TypeVar("T")


def start_simulator(pool_vms: int = 0) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`python -m openvle_pvesim` on a free port at the bench's time scale, with
    `pool_vms` other VMs in the pool."""
    args = [sys.executable, "-m", "openvle_pvesim", "--port", "0", "--tls"]
    args += ["--vms", str(pool_vms)]
    proc = subprocess.Popen([*args, "--time-scale", str(SCALE)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("simulator did not start")
    return proc, json.loads(line)


def settings_for(info: dict[str, Any], database_url: str) -> Settings:
    """The service's settings for the simulator: CI token, its CA, waits scaled too."""
    return load_settings(
        env_file=None,
        proxmox={
            **ProxmoxSettings.values_for(
                info["hostname"], TOKEN_ID, info["tokens"][TOKEN_ID], info["ca_file"]
            ),
            "vms_pool": POOL,
        },
        database={"url": SecretStr(database_url)},
        # the service's waits shrink with the simulated time: retry pauses, and the pause
        # before the guest agent is first asked (20 s by default, 2 s at scale 0.1)
        worker={
            "retry_backoff_scale": SCALE,
            "agent_ip_first_poll": AGENT_FIRST_POLL * SCALE,
        },
    )


async def _prepare(sessions: Any, vms: int) -> str:
    """The template row and the event; returns the event id."""
    async with transaction(sessions) as session:
        template = Template(vmid=TEMPLATE[0], name=TEMPLATE[1], node=TEMPLATE[2], cores=2)
        session.add(template)
        await session.flush()
        start = datetime.now(UTC) + timedelta(days=1)
        view = await service.create_event(
            session,
            slug="bench",
            name="Benchmark",
            starts_at=start,
            ends_at=start + timedelta(hours=8),
            participants=vms,
            template_ids=[template.id],
        )
        return view.event.id


def request_counts() -> dict[str, float]:
    """Proxmox requests sent so far by this process, per `METHOD endpoint`."""
    counts: dict[str, float] = {}
    for metric in PROXMOX_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                key = f"{sample.labels['method']} {sample.labels['endpoint']}"
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def per_vm(before: dict[str, float], after: dict[str, float], vms: int) -> dict[str, float]:
    """Requests per deployed VM by endpoint between two `request_counts`, biggest first."""
    spent = {k: v - before.get(k, 0.0) for k, v in after.items()}
    rows = {k: round(v / max(vms, 1), 2) for k, v in spent.items() if v > 0}
    return dict(sorted(rows.items(), key=lambda kv: (-kv[1], kv[0])))


async def bench_openvle(info: dict[str, Any], vms: int) -> tuple[float, int, dict[str, float]]:
    """Deploy an event of `vms`; returns (seconds, VMs not running, requests per VM by
    endpoint)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'openvle.sqlite3'}"
        await upgrade_to_head(url)
        poll = PollSchedule(first=0.02, factor=1.5, cap=max(0.05, 2.0 * SCALE))
        async with open_runtime(
            settings_for(info, url), runner=run_operation, in_process=True, poll=poll
        ) as runtime:
            event_id = await _prepare(runtime.sessions, vms)
            before = request_counts()
            started = time.perf_counter()
            async with transaction(runtime.sessions) as session:
                op = await service.request_deploy(session, runtime.settings, event_id)
            await runtime.queue.enqueue(op.id)
            state = await _wait(runtime.sessions, op.id)
            elapsed = time.perf_counter() - started
            table = per_vm(before, request_counts(), vms)
            async with transaction(runtime.sessions) as session:
                stmt = select(func.count()).where(Vm.event_id == event_id, Vm.status == "running")
                running = int(await session.scalar(stmt) or 0)
            print(f"openvle: deploy {state}, {running} running in {elapsed:.1f} s", flush=True)
            return elapsed, vms - running, table


def bench_pool_size(pool_vms: int, vms: int) -> dict[str, Any]:
    """`vms` VMs deployed into an empty pool, then into one holding `pool_vms` others."""
    figures: dict[str, Any] = {"pool_vms": pool_vms, "pool_deploy_vms": vms}
    for label, others in (("empty", 0), ("full", pool_vms)):
        proc, info = start_simulator(others)
        try:
            seconds, failed, table = asyncio.run(bench_openvle(info, vms))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        print(f"pool {label} ({others} others): {vms} VMs in {seconds:.1f} s", flush=True)
        figures[f"pool_deploy_s_{label}"] = round(seconds, 2)
        figures[f"pool_deploy_failed_{label}"] = failed
        figures[f"pool_requests_per_vm_{label}"] = round(sum(table.values()), 2)
    figures["pool_slowdown"] = round(
        figures["pool_deploy_s_full"] / max(figures["pool_deploy_s_empty"], 0.001), 2
    )
    return figures


async def _wait(sessions: Any, op_id: str) -> str:
    while True:
        async with transaction(sessions) as session:
            op = await session.get(Operation, op_id)
            assert op is not None
            if op.state in {"succeeded", "failed"}:
                return str(op.state)
            done, total = op.progress_done, op.progress_total
        print(f"  openvle progress {done}/{total}", flush=True)
        await asyncio.sleep(0.5)


def proxmoxer_api(info: dict[str, Any]) -> ProxmoxAPI:
    host, port = info["url"].removeprefix("https://").split("/", 1)[0].rsplit(":", 1)
    user, _, name = TOKEN_ID.partition("!")
    return ProxmoxAPI(
        host,
        port=int(port),
        user=user,
        token_name=name,
        service="PVE",
        token_value=info["tokens"][TOKEN_ID],
        verify_ssl=info["ca_file"],
    )


def wait_task(api: ProxmoxAPI, node: str, upid: str) -> None:
    """Poll the task until it stopped; raise if it did not end OK."""
    while True:
        status = api.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped":
            if status.get("exitstatus") != "OK":
                raise RuntimeError(f"task failed: {status.get('exitstatus')}")
            return
        time.sleep(BASELINE_POLL)


def wait_ip(api: ProxmoxAPI, node: str, vmid: int, timeout: float = 120.0) -> str:
    """Poll the guest agent until it reports a usable IPv4."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = api.nodes(node).qemu(vmid).agent("network-get-interfaces").get()
        except Exception:  # the agent may not answer while the guest boots
            data = {"result": []}
        for iface in data.get("result", []):
            for addr in iface.get("ip-addresses", []):
                ip = str(addr.get("ip-address", ""))
                if addr.get("ip-address-type") == "ipv4" and not ip.startswith(IGNORED_PREFIXES):
                    return ip
        time.sleep(BASELINE_POLL)
    raise TimeoutError(f"no IPv4 for {vmid}")


def one_vm(api: ProxmoxAPI, name: str) -> None:
    """nextid, clone, wait, start, wait, IP: no retry, no lock handling."""
    vmid, node = int(api.cluster.nextid.get()), TEMPLATE[2]
    upid = api.nodes(node).qemu(TEMPLATE[0]).clone.post(newid=vmid, name=name, pool=POOL)
    wait_task(api, node, upid)
    wait_task(api, node, api.nodes(node).qemu(vmid).status.start.post())
    wait_ip(api, node, vmid)


def run_baseline(info: dict[str, Any], label: str, count: int, threads: int) -> tuple[float, int]:
    """`count` VMs by `threads` threads; returns (seconds, failed VMs)."""
    apis = [proxmoxer_api(info) for _ in range(threads)]
    failed = 0

    def job(i: int) -> bool:
        try:
            one_vm(apis[i % threads], f"{label}-{i:03d}")
        except Exception as exc:
            print(f"  {label} VM {i} failed: {type(exc).__name__}: {exc}", flush=True)
            return False
        return True

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        failed = sum(1 for ok in pool.map(job, range(count)) if not ok)
    elapsed = time.perf_counter() - started
    print(f"{label}: {count - failed}/{count} VMs in {elapsed:.1f} s", flush=True)
    return elapsed, failed


def per_min(count: int, failed: int, seconds: float) -> float:
    return round((count - failed) / seconds * 60.0, 1) if seconds > 0 else 0.0


def profiled(run: Callable[[], T]) -> T:
    """`run()`, under cProfile into BENCH_PROFILE when set (top functions on stderr)."""
    if not PROFILE:
        return run()
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(run)
    finally:
        profiler.dump_stats(PROFILE)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pool-vms",
        type=int,
        default=POOL_VMS,
        help="other VMs in the pool for the pool-size comparison (0: skip it)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    proc, info = start_simulator()
    try:
        openvle_s, openvle_failed, table = profiled(lambda: asyncio.run(bench_openvle(info, VMS)))
        seq_s, seq_failed = (0.0, 0)
        t10_s, t10_failed = (0.0, 0)
        if BASELINES:
            seq_s, seq_failed = run_baseline(info, "seq", SEQUENTIAL_VMS, 1)
            t10_s, t10_failed = run_baseline(info, "t10", VMS, 10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    pool = bench_pool_size(args.pool_vms, POOL_DEPLOY_VMS) if args.pool_vms > 0 else {}
    figures: dict[str, Any] = {
        "openvle_vms_per_min": per_min(VMS, openvle_failed, openvle_s),
        "sequential_vms_per_min": per_min(SEQUENTIAL_VMS, seq_failed, seq_s),
        "threads10_vms_per_min": per_min(VMS, t10_failed, t10_s),
        "openvle_failed": openvle_failed,
        "sequential_failed": seq_failed,
        "threads10_failed": t10_failed,
        "vms": VMS,
        "sequential_vms": SEQUENTIAL_VMS,
        "time_scale": SCALE,
    }
    figures["speedup_vs_sequential"] = round(
        figures["openvle_vms_per_min"] / max(figures["sequential_vms_per_min"], 0.1), 2
    )
    figures["speedup_vs_threads10"] = round(
        figures["openvle_vms_per_min"] / max(figures["threads10_vms_per_min"], 0.1), 2
    )
    figures["requests_per_vm"] = round(sum(table.values()), 2)
    figures["requests_per_vm_by_endpoint"] = table
    figures.update(pool)
    figures["targets"] = targets(figures)
    print(json.dumps(figures))


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    """Issue 16's targets with their figures and whether each is met."""
    found: dict[str, Any] = {
        "requests_per_vm_max_10": {
            "value": figures["requests_per_vm"],
            "met": figures["requests_per_vm"] <= 10,
        },
        "speedup_vs_threads10_min_2": {
            "value": figures["speedup_vs_threads10"],
            "met": figures["speedup_vs_threads10"] >= 2 and figures["openvle_failed"] == 0,
        },
    }
    if "pool_slowdown" in figures:
        found["pool_slowdown_max_1_2"] = {
            "value": figures["pool_slowdown"],
            "met": figures["pool_slowdown"] <= 1.2
            and figures["pool_deploy_failed_empty"] == 0
            and figures["pool_deploy_failed_full"] == 0,
        }
    return found


if __name__ == "__main__":
    main()
