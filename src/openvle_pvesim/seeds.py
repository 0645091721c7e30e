"""Seeds: the initial cluster (`demo`, `empty`, or a JSON file) plus tokens and ACLs.

JSON seed format (every key optional except `nodes`; nodes default to pve1-pve3 if empty):

    {"nodes": [{"name": "pve1", "cpu": 0.12, "maxcpu": 32, "maxmem": 274877906944}],
     "storages": [{"sid": "ceph", "plugintype": "rbd", "shared": true, "total": 1e13}],
     "pools": [{"poolid": "OpenVLE-VMs", "comment": "..."}],
     "vms": [{"vmid": 9000, "node": "pve1", "pool": "OpenVLE-VMs", "running": false,
              "agent_running": true, "config": {"name": "t", "template": 1, "cores": 2,
              "memory": "2048", "scsi0": "ceph:base-9000-disk-0,size=32G", ...}}],
     "ha": [{"vmid": 100, "state": "started"}]}

Every seed registers the tokens `openvle@pve!ci` (privilege separation, the ACLs the
OpenVLE docs require) and `root@pam!admin` (full rights), with the secrets in
`DEMO_TOKENS`, plus any extra `tokens` given; the users `root@pam` and `openvle@pve` may
also log in with the passwords in `DEMO_PASSWORDS` (group `openvle`: openvle@pve).

Node memory: the demo nodes have 256 GiB, except pve2 (it holds the local-lvm Kali
template, so its clones all run there) with 768 GiB; with the rule of `usage` (a running
guest holds half its memory) an event of 100 participants x the three templates (300
VMs, Debian and Ubuntu spread over the nodes) starts in full. `--vms N` grows each
node's memory (in 64 GiB steps) until a quarter of it stays free with its running VMs.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

from openvle_pvesim.agent import dhcp_address
from openvle_pvesim.cluster import Cluster
from openvle_pvesim.faults import DomainFaults
from openvle_pvesim.model import GIB, VM, HAService, Node, Pool, Storage

OPENVLE_POOL = "OpenVLE-VMs"
OPENVLE_TOKEN = "openvle@pve!ci"
ADMIN_TOKEN = "root@pam!admin"
DEMO_TOKENS = {
    OPENVLE_TOKEN: "9d5b2f4e-6c1a-4e8b-a7d3-2f0c8e1b5a64",
    ADMIN_TOKEN: "3c7e9a1f-0b2d-4f6e-8a5c-1d9b7e3f2a80",
}
DEMO_PASSWORDS = {"root@pam": "pvesim-root", "openvle@pve": "pvesim-openvle"}
NODE_MEMORY = {"pve2": 768 * GIB}  # the others keep Node's 256 GiB
FREE_SHARE = 0.25  # `--vms N`: memory each node keeps free
MEMORY_STEP = 64 * GIB
OPENVLE_VM_PRIVS = [
    "VM.Allocate",
    "VM.Audit",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.Migrate",
    "VM.PowerMgmt",
    "Pool.Audit",
]
AGENT_PRIV = {"8.4": "VM.Monitor", "9.1": "VM.GuestAgent.Audit"}
# (path, role, privileges, propagate): what the OpenVLE docs have admins grant.
OPENVLE_ACLS: list[tuple[str, str, list[str], bool]] = [
    (f"/pool/{OPENVLE_POOL}", "OpenVLE-VMs", [], True),
    ("/nodes", "OpenVLE-Nodes", ["Sys.Audit"], True),
    ("/storage", "OpenVLE-Storage", ["Datastore.AllocateSpace", "Datastore.Audit"], True),
    ("/sdn/zones", "OpenVLE-SDN", ["SDN.Use"], True),
    ("/", "OpenVLE-HA", ["Sys.Audit", "Sys.Console"], False),
]
TEMPLATES = [
    (9000, "debian-12-template", "pve1", "ceph", 2, 2048, 32),
    (9001, "ubuntu-2404-template", "pve3", "ceph", 2, 4096, 40),
    (9002, "kali-2025-template", "pve2", "local-lvm", 4, 8192, 80),
]
OTHER_TEAM = [(200, "ot-web-01", "pve1", True), (201, "ot-db-01", "pve2", True)]
OTHER_TEAM += [(202, "ot-build-01", "pve3", False)]


def build_cluster(
    seed: str,
    *,
    version: str,
    vms: int,
    time_scale: float,
    faults: DomainFaults,
    rng: random.Random,
    tokens: list[tuple[str, str]],
) -> Cluster:
    """Build a cluster from a seed name or JSON path, with `vms` extra VMs and tokens."""
    cluster = Cluster(version, time_scale, faults, rng)
    if seed == "demo":
        spec = demo_spec(cluster)
    elif seed == "empty":
        spec = {"nodes": [], "pools": [{"poolid": OPENVLE_POOL}]}
    else:
        spec = json.loads(Path(seed).read_text())
    load_spec(cluster, spec)
    if vms:
        add_extra_vms(cluster, vms)
    setup_access(cluster, tokens)
    cluster.tick()
    return cluster


def default_infrastructure(cluster: Cluster) -> None:
    """Nodes pve1-pve3 with different loads, local-lvm per node and a shared ceph."""
    for i, (name, cpu) in enumerate([("pve1", 0.12), ("pve2", 0.48), ("pve3", 0.27)], 1):
        cluster.nodes[name] = Node(name, i, f"10.10.0.{10 + i}", cpu)
        cluster.nodes[name].maxmem = NODE_MEMORY.get(name, cluster.nodes[name].maxmem)
    cluster.storages["local-lvm"] = Storage("local-lvm", "lvmthin", False, 2048 * GIB)
    cluster.storages["ceph"] = Storage("ceph", "rbd", True, 16384 * GIB)


def template_config(cluster: Cluster, t: tuple[Any, ...]) -> dict[str, Any]:
    vmid, name, _node, sid, cores, mem, disk = t
    return {
        "name": name,
        "cores": cores,
        "sockets": 1,
        "memory": str(mem),
        "cpu": "x86-64-v2-AES",
        "ostype": "l26",
        "scsihw": "virtio-scsi-single",
        "scsi0": f"{sid}:base-{vmid}-disk-0,iothread=1,size={disk}G",
        "ide2": f"{sid}:vm-{vmid}-cloudinit,media=cdrom",
        "net0": f"virtio={cluster.new_mac()},bridge=vmbr0,firewall=1",
        "boot": "order=scsi0",
        "agent": "1",
        "ipconfig0": "ip=dhcp",
        "smbios1": f"uuid={uuid.UUID(int=cluster.rng.getrandbits(128), version=4)}",
        "vmgenid": str(uuid.UUID(int=cluster.rng.getrandbits(128), version=4)),
        "meta": "creation-qemu=9.2.0,ctime=1735689600",
        "template": 1,
    }


def demo_spec(cluster: Cluster) -> dict[str, Any]:
    """The `demo` seed as a spec: three templates in the OpenVLE pool, a foreign pool."""
    vms: list[dict[str, Any]] = []
    for t in TEMPLATES:
        vms.append(
            {
                "vmid": t[0],
                "node": t[2],
                "pool": OPENVLE_POOL,
                "config": template_config(cluster, t),
            }
        )
    for vmid, name, node, running in OTHER_TEAM:
        config = template_config(cluster, (vmid, name, node, "ceph", 2, 2048, 20))
        config.pop("template")
        config["scsi0"] = f"ceph:vm-{vmid}-disk-0,iothread=1,size=20G"
        vms.append(
            {"vmid": vmid, "node": node, "pool": "Other-Team", "running": running, "config": config}
        )
    return {
        "pools": [
            {"poolid": OPENVLE_POOL, "comment": "OpenVLE managed VMs"},
            {"poolid": "Other-Team", "comment": "Not OpenVLE's business"},
        ],
        "vms": vms,
    }


def load_spec(cluster: Cluster, spec: dict[str, Any]) -> None:
    """Fill `cluster` from a seed spec (see the module docstring)."""
    default_infrastructure(cluster)
    if spec.get("nodes"):
        cluster.nodes.clear()
        for i, n in enumerate(spec["nodes"], 1):
            cluster.nodes[n["name"]] = Node(
                n["name"],
                i,
                n.get("ip", f"10.10.0.{10 + i}"),
                float(n.get("cpu", 0.1)),
                maxcpu=int(n.get("maxcpu", 32)),
                maxmem=int(n.get("maxmem", 256 * GIB)),
            )
    if spec.get("storages"):
        cluster.storages.clear()
        for s in spec["storages"]:
            cluster.storages[s["sid"]] = Storage(
                s["sid"],
                s.get("plugintype", "lvmthin"),
                bool(s.get("shared")),
                int(s.get("total", 1024 * GIB)),
            )
    for p in spec.get("pools", []):
        cluster.pools[p["poolid"]] = Pool(p["poolid"], p.get("comment", ""))
    for v in spec.get("vms", []):
        vm = VM(int(v["vmid"]), v["node"], dict(v["config"]))
        vm.agent_running = bool(v.get("agent_running", True))
        cluster.vms[vm.vmid] = vm
        if v.get("running"):
            start_now(cluster, vm)
        if v.get("pool"):
            cluster.pools.setdefault(v["pool"], Pool(v["pool"]))
            cluster.set_pool(vm.vmid, v["pool"])
    for h in spec.get("ha", []):
        vmid = int(h["vmid"])
        cluster.ha[vmid] = HAService(vmid, {"state": h.get("state", "started")})
        cluster.ha[vmid].crm_state = "started" if cluster.vms[vmid].running else "stopped"


def start_now(cluster: Cluster, vm: VM) -> None:
    """Mark a VM as running since a while (seeded VMs): the agent has its DHCP lease."""
    vm.running = True
    vm.started_at = time.time() - cluster.rng.randrange(600, 86400)
    vm.dhcp_ip = dhcp_address(cluster, vm)


def add_extra_vms(cluster: Cluster, count: int) -> None:
    """`--vms N`: clones of the ceph templates spread over nodes; a quarter running.

    Nine in ten are linked clones, one in ten a full clone; one in seven has a static
    cloud-init address instead of DHCP.
    """
    nodes = list(cluster.nodes)
    bases = [t for t in TEMPLATES if t[3] == "ceph" and t[0] in cluster.vms] or [TEMPLATES[0]]
    cluster.pools.setdefault(OPENVLE_POOL, Pool(OPENVLE_POOL))
    first = max([10000, *(vmid + 1 for vmid in cluster.vms)])
    for i in range(count):
        vmid = first + i
        base = bases[i % len(bases)]
        config = template_config(cluster, base)
        config.pop("template")
        config["name"] = f"vle-{base[1].split('-')[0]}-{i:05d}"
        volume = f"vm-{vmid}-disk-0" if i % 10 == 9 else f"base-{base[0]}-disk-0/vm-{vmid}-disk-0"
        config["scsi0"] = f"ceph:{volume},iothread=1,size={base[6]}G"
        config["ide2"] = f"ceph:vm-{vmid}-cloudinit,media=cdrom"
        if i % 7 == 3:
            config["ipconfig0"] = f"ip=10.40.{i // 250 % 250}.{i % 250 + 2}/16,gw=10.40.0.1"
        vm = VM(vmid, nodes[i % len(nodes)], config)
        cluster.vms[vmid] = vm
        cluster.set_pool(vmid, OPENVLE_POOL)
        if i % 4 == 0:
            start_now(cluster, vm)
    grow_memory(cluster)


def grow_memory(cluster: Cluster) -> None:
    """Give each node enough memory that a quarter stays free with its running VMs."""
    for name, node in cluster.nodes.items():
        needed = (node.mem_base + cluster.usage.node_mem.get(name, 0)) / (1 - FREE_SHARE)
        if needed > node.maxmem:
            node.maxmem = -(-int(needed) // MEMORY_STEP) * MEMORY_STEP


def setup_access(cluster: Cluster, tokens: list[tuple[str, str]]) -> None:
    """Roles, users, the two demo tokens and any extra tokens."""
    access = cluster.access
    vm_privs = [*OPENVLE_VM_PRIVS, AGENT_PRIV["8.4" if cluster.version == "8.4" else "9.1"]]
    for _path, role, privs, _prop in OPENVLE_ACLS:
        access.add_role(role, privs or vm_privs)
    for tokenid, secret in [*DEMO_TOKENS.items(), *tokens]:
        add_token(cluster, tokenid, secret)
    for userid, password in DEMO_PASSWORDS.items():
        access.add_user(userid, password)
        cluster.passwords[userid] = password
    access.accounts["openvle@pve"].comment = "OpenVLE service"
    access.add_group("openvle", ["openvle@pve"], "OpenVLE service accounts")


def add_token(cluster: Cluster, tokenid: str, secret: str) -> None:
    """Register a token: openvle@pve tokens get the OpenVLE ACLs, others full rights."""
    access = cluster.access
    userid = tokenid.split("!", 1)[0]
    if userid not in cluster.users:
        cluster.users.add(userid)
        access.add_user(userid)  # root@pam needs no ACL: it holds every privilege
        if userid != "openvle@pve":
            access.set_acl("/", userid, "Administrator")
        else:
            for path, role, _privs, propagate in OPENVLE_ACLS:
                access.set_acl(path, userid, role, propagate=propagate)
    if userid == "openvle@pve":
        access.add_token(tokenid, secret, True)
        for path, role, _privs, propagate in OPENVLE_ACLS:
            access.set_acl(path, tokenid, role, propagate=propagate)
    else:
        access.add_token(tokenid, secret, False)
