"""HA resources (both versions), rules (9.x) and groups (8.4; migrated to rules on 9.x)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from openvle_pvesim.cluster import Cluster, HAService
from openvle_pvesim.contract import Request, route
from openvle_pvesim.errors import PVEError, param_error

MIGRATED = "ha groups have been migrated to rules"
RESOURCE_KEYS = ("state", "max_restart", "max_relocate", "comment", "failback", "group")


def parse_sid(sid: str) -> int:
    """`vm:100` or `100` -> 100 (containers are not simulated)."""
    match = re.match(r"^(?:vm:)?(\d+)$", sid)
    if not match:
        raise param_error(sid=f"unable to parse service id '{sid}'")
    return int(match[1])


def digest(cluster: Cluster) -> str:
    text = ";".join(f"{v}:{sorted(s.conf.items())}" for v, s in sorted(cluster.ha.items()))
    return hashlib.sha1(text.encode()).hexdigest()


def resource_item(cluster: Cluster, svc: HAService) -> dict[str, Any]:
    item: dict[str, Any] = {"sid": svc.sid, "type": "vm", "digest": digest(cluster)}
    item.update({k: v for k, v in svc.conf.items() if k in RESOURCE_KEYS})
    return item


def check_group(cluster: Cluster, params: dict[str, Any]) -> None:
    group = params.get("group")
    if group is None:
        return
    if cluster.version != "8.4":
        raise PVEError(500, f"invalid parameter 'group': {MIGRATED}")
    if group not in cluster.ha_groups:
        raise PVEError(500, f"group '{group}' does not exist")


def settings(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (int(v) if isinstance(v, bool) else v) for k, v in params.items() if k in RESOURCE_KEYS
    }


@route("GET", "/cluster/ha/resources")
async def list_resources(req: Request) -> list[dict[str, Any]]:
    if req.params.get("type") == "ct":
        return []
    return [resource_item(req.cluster, svc) for _, svc in sorted(req.cluster.ha.items())]


@route("GET", "/cluster/ha/resources/{sid}")
async def read_resource(req: Request) -> dict[str, Any]:
    vmid = parse_sid(str(req.params["sid"]))
    svc = req.cluster.ha.get(vmid)
    if svc is None:
        raise PVEError(500, f"no such resource 'vm:{vmid}'")
    return resource_item(req.cluster, svc)


@route("POST", "/cluster/ha/resources")
async def create_resource(req: Request) -> None:
    """Add `vm:ID`; the CRM acts on its state at the next HA round."""
    cluster = req.cluster
    vmid = parse_sid(str(req.params["sid"]))
    if vmid in cluster.ha:
        raise PVEError(500, f"resource ID 'vm:{vmid}' already defined")
    if vmid not in cluster.vms:
        raise PVEError(500, f"resource 'vm:{vmid}' does not exist in cluster")
    check_group(cluster, req.params)
    conf = {"state": "started", **settings(req.params)}
    svc = HAService(vmid, conf)
    svc.crm_state = "started" if cluster.vms[vmid].running else "stopped"
    cluster.ha[vmid] = svc


@route("PUT", "/cluster/ha/resources/{sid}")
async def update_resource(req: Request) -> None:
    cluster = req.cluster
    vmid = parse_sid(str(req.params["sid"]))
    svc = cluster.ha.get(vmid)
    if svc is None:
        raise PVEError(500, f"no such resource 'vm:{vmid}'")
    if req.params.get("digest") not in (None, digest(cluster)):
        raise PVEError(
            500, "detected modified configuration - file changed by other user? Try again."
        )
    if svc.crm_state == "error" and req.params.get("state") not in ("disabled", None):
        raise PVEError(500, f"service 'vm:{vmid}' in error state, must be disabled and fixed first")
    check_group(cluster, req.params)
    for key in [k for k in re.split(r"[,;\s]+", str(req.params.get("delete", ""))) if k]:
        svc.conf.pop(key, None)
    svc.conf.update(settings(req.params))
    if svc.crm_state == "error" and svc.state == "disabled":
        svc.crm_state, svc.failures = "disabled", 0


@route("DELETE", "/cluster/ha/resources/{sid}")
async def delete_resource(req: Request) -> None:
    cluster = req.cluster
    vmid = parse_sid(str(req.params["sid"]))
    if vmid not in cluster.ha:
        raise PVEError(500, f"cannot delete service 'vm:{vmid}', not HA managed!")
    del cluster.ha[vmid]
    if cluster.version != "8.4" and req.params.get("purge", True):
        for rule in cluster.ha_rules.values():
            kept = [r for r in str(rule["resources"]).split(",") if r and r != f"vm:{vmid}"]
            rule["resources"] = ",".join(kept)


RULE_KEYS = ("type", "resources", "nodes", "strict", "affinity", "comment", "disable")


def rule_item(rule: str, conf: dict[str, Any]) -> dict[str, Any]:
    text = ";".join(f"{k}={v}" for k, v in sorted(conf.items()))
    return {"rule": rule, **conf, "digest": hashlib.sha1(text.encode()).hexdigest()}


@route("GET", "/cluster/ha/rules")
async def list_rules(req: Request) -> list[dict[str, Any]]:
    kind, resource = req.params.get("type"), req.params.get("resource")
    out = []
    for name, conf in sorted(req.cluster.ha_rules.items()):
        if kind is not None and conf["type"] != kind:
            continue
        if resource is not None and str(resource) not in str(conf["resources"]).split(","):
            continue
        out.append(rule_item(name, conf))
    return out


@route("POST", "/cluster/ha/rules")
async def create_rule(req: Request) -> None:
    name = str(req.params["rule"])
    if name in req.cluster.ha_rules:
        raise PVEError(500, f"rule '{name}' already defined")
    conf = {
        k: (int(v) if isinstance(v, bool) else v) for k, v in req.params.items() if k in RULE_KEYS
    }
    if conf["type"] == "node-affinity" and "nodes" not in conf:
        raise param_error(nodes="property is missing and it is not optional")
    if conf["type"] == "resource-affinity" and "affinity" not in conf:
        raise param_error(affinity="property is missing and it is not optional")
    req.cluster.ha_rules[name] = conf


def get_rule(req: Request) -> tuple[str, dict[str, Any]]:
    name = str(req.params["rule"])
    if name not in req.cluster.ha_rules:
        raise PVEError(500, f"no such ha rule '{name}'")
    return name, req.cluster.ha_rules[name]


@route("GET", "/cluster/ha/rules/{rule}")
async def read_rule(req: Request) -> dict[str, Any]:
    return rule_item(*get_rule(req))


@route("PUT", "/cluster/ha/rules/{rule}")
async def update_rule(req: Request) -> None:
    _, conf = get_rule(req)
    for key in [k for k in re.split(r"[,;\s]+", str(req.params.get("delete", ""))) if k]:
        conf.pop(key, None)
    conf.update(
        {k: (int(v) if isinstance(v, bool) else v) for k, v in req.params.items() if k in RULE_KEYS}
    )


@route("DELETE", "/cluster/ha/rules/{rule}")
async def delete_rule(req: Request) -> None:
    name, _ = get_rule(req)
    del req.cluster.ha_rules[name]


def groups_usable(cluster: Cluster, action: str) -> None:
    """On 9.x with no groups left, every group call fails as groups.cfg was migrated."""
    if cluster.version != "8.4":
        raise PVEError(500, f"cannot {action}: {MIGRATED}")


@route("GET", "/cluster/ha/groups")
async def list_groups(req: Request) -> list[dict[str, Any]]:
    groups_usable(req.cluster, "index groups")
    return [
        {"group": g, "type": "group", **conf} for g, conf in sorted(req.cluster.ha_groups.items())
    ]


@route("POST", "/cluster/ha/groups")
async def create_group(req: Request) -> None:
    groups_usable(req.cluster, "create group")
    name = str(req.params["group"])
    if name in req.cluster.ha_groups:
        raise PVEError(500, f"ha group '{name}' already defined")
    keys = ("nodes", "restricted", "nofailback", "comment")
    conf = {k: (int(v) if isinstance(v, bool) else v) for k, v in req.params.items() if k in keys}
    req.cluster.ha_groups[name] = conf


@route("GET", "/cluster/ha/groups/{group}")
async def read_group(req: Request) -> dict[str, Any]:
    groups_usable(req.cluster, "read group")
    name = str(req.params["group"])
    if name not in req.cluster.ha_groups:
        raise PVEError(500, f"no such ha group '{name}'")
    return {"group": name, "type": "group", **req.cluster.ha_groups[name]}


@route("DELETE", "/cluster/ha/groups/{group}")
async def delete_group(req: Request) -> None:
    groups_usable(req.cluster, "delete group")
    if req.cluster.ha_groups.pop(str(req.params["group"]), None) is None:
        raise PVEError(500, f"no such ha group '{req.params['group']}'")
