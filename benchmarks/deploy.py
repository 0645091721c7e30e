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
advantage). Prints progress lines, then one JSON line with `openvle_vms_per_min`,
`sequential_vms_per_min`, `threads10_vms_per_min`, `openvle_failed`, `sequential_failed`,
`threads10_failed` and the ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from proxmoxer import ProxmoxAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Operation, Template, Vm
from openvle_core.db.session import transaction
from openvle_core.events import service
from openvle_core.handlers import run_operation
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
BASELINE_POLL = 0.05
TOKEN_ID = "openvle@pve!ci"
POOL = "OpenVLE-VMs"
TEMPLATE = (9000, "debian-12-template", "pve1")  # linked clones on shared ceph
IGNORED_PREFIXES = ("127.", "169.254.", "172.17.")


def start_simulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`python -m openvle_pvesim` on a free port at the bench's time scale."""
    args = [sys.executable, "-m", "openvle_pvesim", "--port", "0", "--tls"]
    proc = subprocess.Popen([*args, "--time-scale", str(SCALE)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("simulator did not start")
    return proc, json.loads(line)


def settings_for(info: dict[str, Any], database_url: str) -> Settings:
    """The service's settings for the simulator: CI token, its CA, retries scaled too."""
    return load_settings(
        env_file=None,
        proxmox={
            **ProxmoxSettings.values_for(
                info["hostname"], TOKEN_ID, info["tokens"][TOKEN_ID], info["ca_file"]
            ),
            "vms_pool": POOL,
        },
        database={"url": SecretStr(database_url)},
        worker={"retry_backoff_scale": SCALE},
    )


async def _prepare(sessions: Any) -> str:
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
            participants=VMS,
            template_ids=[template.id],
        )
        return view.event.id


async def bench_openvle(info: dict[str, Any]) -> tuple[float, int]:
    """Deploy the event; returns (seconds, VMs not running)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'openvle.sqlite3'}"
        await upgrade_to_head(url)
        poll = PollSchedule(first=0.02, factor=1.5, cap=max(0.05, 2.0 * SCALE))
        async with open_runtime(
            settings_for(info, url), runner=run_operation, in_process=True, poll=poll
        ) as runtime:
            event_id = await _prepare(runtime.sessions)
            started = time.perf_counter()
            async with transaction(runtime.sessions) as session:
                op = await service.request_deploy(session, runtime.settings, event_id)
            await runtime.queue.enqueue(op.id)
            state = await _wait(runtime.sessions, op.id)
            elapsed = time.perf_counter() - started
            async with transaction(runtime.sessions) as session:
                stmt = select(func.count()).where(Vm.event_id == event_id, Vm.status == "running")
                running = int(await session.scalar(stmt) or 0)
            print(f"openvle: deploy {state}, {running} running in {elapsed:.1f} s", flush=True)
            return elapsed, VMS - running


async def _wait(sessions: Any, op_id: str) -> str:
    while True:
        async with transaction(sessions) as session:
            op = await session.get(Operation, op_id)
            assert op is not None
            if op.state in {"succeeded", "failed"}:
                return str(op.state)
            done, total = op.progress_done, op.progress_total
        print(f"  openvle progress {done}/{total}", flush=True)
        await asyncio.sleep(2.0)


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
    return round((count - failed) / seconds * 60.0, 1)


def main() -> None:
    proc, info = start_simulator()
    try:
        openvle_s, openvle_failed = asyncio.run(bench_openvle(info))
        seq_s, seq_failed = run_baseline(info, "seq", SEQUENTIAL_VMS, 1)
        t10_s, t10_failed = run_baseline(info, "t10", VMS, 10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    figures = {
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
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
