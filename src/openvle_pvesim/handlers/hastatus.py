"""GET /cluster/ha/status/current, as pve-ha-manager API2/HA/Status.pm builds it.

Entries: `quorum` (the answering node, here the first), the CRM `master` while HA
resources exist (the simulated CRM is active then, its timestamp the last 10 s round),
on 9.1 the `fencing` entry (armed while the CRM is active, else standby), one `lrm` per
node while the CRM runs (`active` with active services, else idle; an offline node's
timestamp is old), and one `service` per HA resource sorted by sid with the verbose
state of HA/Tools.pm `get_verbose_service_state` and the resource's settings. The 8.4
texts lack the watchdog part (Status.pm before the fencing entry, 2026-03).
"""

from __future__ import annotations

import time
from typing import Any

from openvle_pvesim.cluster import VM, Cluster, HAService
from openvle_pvesim.contract import Request, route

ROUND = 10
INACTIVE = ("stopped", "freeze", "error", "request_start")  # count_active_services skips
SERVICE_KEYS = ("group", "max_restart", "max_relocate", "failback", "comment")


def verbose_state(svc: HAService, vm: VM) -> str:
    """HA/Tools.pm `get_verbose_service_state`: fast feedback from request and CRM state."""
    requested, current = svc.state, svc.crm_state
    if requested == "ignored":
        return "ignored"
    if current == "stopped":
        return {"started": "starting", "disabled": "disabled"}.get(requested, current)
    if current == "started":
        if not vm.running:
            return "starting"
        return "stopping" if requested in ("stopped", "disabled") else current
    if current == "error" and requested == "disabled":
        return "clearing error flag"
    return current


def service_entry(svc: HAService, vm: VM) -> dict[str, Any]:
    state = verbose_state(svc, vm)
    entry: dict[str, Any] = {
        "id": f"service:{svc.sid}",
        "type": "service",
        "sid": svc.sid,
        "node": vm.node,
        "crm_state": svc.crm_state,
        "state": state,
        "status": f"{svc.sid} ({vm.node}, {state})",
        "request_state": svc.state,
    }
    entry.update({k: svc.conf[k] for k in SERVICE_KEYS if k in svc.conf})
    return entry


def lrm_entry(cluster: Cluster, name: str, stamp: int, active: int) -> dict[str, Any]:
    """One node's LRM: active while it holds services, idle otherwise, dead when offline."""
    node = cluster.nodes[name]
    if not node.online:
        stamp, status, watchdog = stamp - 120, "old timestamp - dead?", "watchdog standby"
    elif active:
        status, watchdog = "active", "watchdog active"
    else:
        status, watchdog = "idle", "watchdog standby"
    parts = [status] if cluster.version == "8.4" else [status, watchdog]
    text = f"{name} ({', '.join([*parts, time.ctime(stamp)])})"
    return {"id": f"lrm:{name}", "type": "lrm", "node": name, "status": text, "timestamp": stamp}


@route("GET", "/cluster/ha/status/current")
async def ha_status(req: Request) -> list[dict[str, Any]]:
    cluster = req.cluster
    local = next(iter(cluster.nodes))
    out: list[dict[str, Any]] = [
        {"id": "quorum", "type": "quorum", "node": local, "status": "OK", "quorate": 1}
    ]
    services = [(svc, cluster.vms.get(vmid)) for vmid, svc in cluster.ha.items()]
    present = sorted(((s, v) for s, v in services if v is not None), key=lambda p: p[0].sid)
    now = int(time.time())
    stamp = now - now % ROUND
    master = next((n for n, node in cluster.nodes.items() if node.online), local)
    if present:
        text = f"{master} (active, {time.ctime(stamp)})"
        out.append(
            {"id": "master", "type": "master", "node": master, "status": text, "timestamp": stamp}
        )
    if cluster.version != "8.4":
        armed = "armed" if present else "standby"
        watchdog = "CRM watchdog active" if present else "CRM watchdog standby"
        out.append(
            {
                "id": "fencing",
                "type": "fencing",
                "node": master if present else local,
                "status": f"{armed} ({watchdog})",
                "armed-state": armed,
            }
        )
    if present:
        for name in sorted(cluster.nodes):
            active = sum(1 for s, v in present if v.node == name and s.crm_state not in INACTIVE)
            out.append(lrm_entry(cluster, name, stamp, active))
    out.extend(service_entry(svc, vm) for svc, vm in present)
    return out
