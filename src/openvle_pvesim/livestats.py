"""A VM's live figures: the one source status/current, the node's VM list and the
pvestatd view (/cluster/resources) all read.

The shape follows qemu-server QemuServer.pm `vmstatus` (and API2/Qemu.pm `vm_status`,
`vmlist`): the cheap part for every VM (`pid`, `cpu`, `mem`, `memhost`, `netin`/`netout`
summed over the `tap<vmid>i<n>` devices, the 9.x `pressure*` averages), and with `full`
what QMP adds for running VMs (`nics`, `blockstat` per drive with `diskread`/`diskwrite`
their sums, `qmpstatus`, `running-machine`, `running-qemu`, `proxmox-support`, and the
balloon driver's `ballooninfo`, `balloon`, `freemem` with `mem` = total - free).
pvestatd (pve-manager Service/pvestatd.pm `update_qemu_status`) broadcasts the full
figures, so /cluster/resources shows the same numbers one tick later.

The numbers are deterministic: per-device rates drawn from the vmid, counters that grow
with the uptime (and start over at the next start), memory from `usage.Usage` (the
host's share, `memhost`) and the guest's own use below it. Computing them costs
O(the VM's devices); nothing here looks at other VMs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from openvle_pvesim.vmconfig import DISK_RE, NET_RE, parse_props

if TYPE_CHECKING:
    from openvle_pvesim.model import VM, ClusterState

MIB = 1024**2
# PVE release -> (QEMU version, machine version, its +pveN revision). pve-qemu-kvm 10.1.2
# shipped with 9.1 and 9.2.0 with 8.4; the revision is Machine.pm's $PVE_MACHINE_VERSION
# `highest` for that machine version (none for 10.1, so +pve0).
QEMU = {"9.1": ("10.1.2", "10.1", 0), "8.4": ("9.2.0", "9.2", 1)}
PBS_LIBRARY = {"9.1": "2.0.1 (UNKNOWN)", "8.4": "1.5.1 (UNKNOWN)"}  # proxmox-backup-qemu
GUEST_USED = (0.30, 0.45)  # what the guest itself uses, as a fraction of its memory
PRESSURES = ("cpusome", "cpufull", "iosome", "iofull", "memorysome", "memoryfull")


def unit(vmid: int, salt: int) -> float:
    """A stable pseudo-random number in [0, 1) for a VM and a purpose."""
    return ((vmid * 2654435761 + salt * 40503 + 12345) % 1000003) / 1000003


def cpus(cluster: ClusterState, vm: VM) -> int:
    """sockets x cores, at most the node's CPUs, `vcpus` when set (vmstatus)."""
    config = vm.config
    count = int(config.get("sockets", 1)) * int(config.get("cores", 1))
    node = cluster.nodes.get(vm.node)
    if node is not None:
        count = min(count, node.maxcpu)
    return int(config.get("vcpus") or count)


def cpu_fraction(vm: VM, now: float) -> float:
    """A running guest's CPU use: its own level, varying per 10 s window (0 when not)."""
    if not vm.running or vm.paused:
        return 0
    level = 0.005 + 0.245 * unit(vm.vmid, 1)
    return round(level * (0.7 + 0.6 * unit(vm.vmid, int(now // 10))), 4)


def uptime(vm: VM, now: float) -> int:
    return int(now - vm.started_at) if vm.running else 0


def nics(vm: VM, seconds: int) -> Iterator[tuple[str, int, int]]:
    """(`tap<vmid>i<n>`, netin, netout) per NIC: bytes to/from the guest since its start."""
    vmid = vm.vmid
    for key in vm.config:
        if NET_RE.match(key):
            n = int(key[3:])
            rate_in = 1024 * (2 + 60 * unit(vm.vmid, 10 + n))
            rate_out = rate_in * (0.05 + 0.3 * unit(vm.vmid, 20 + n))
            netin = int(4 * MIB * unit(vmid, 30 + n) + rate_in * seconds)
            yield f"tap{vmid}i{n}", netin, int(MIB * unit(vmid, 40 + n) + rate_out * seconds)


def drives(vm: VM, seconds: int) -> Iterator[tuple[str, int, int]]:
    """(drive key, bytes read, bytes written) since the start: a boot read, then rates."""
    vmid = vm.vmid
    for index, key in enumerate(sorted(k for k in vm.config if DISK_RE.match(k))):
        if "media=cdrom" in str(vm.config[key]):
            yield key, int(172032 * (1 + unit(vmid, 50 + index))), 0
            continue
        boot = int((150 + 200 * unit(vmid, 60 + index)) * MIB) if index == 0 else 27648
        read_rate = 1024 * (4 + 40 * unit(vmid, 70 + index))
        write_rate = 1024 * (8 + 80 * unit(vmid, 80 + index))
        yield key, boot + int(read_rate * seconds), int(write_rate * seconds)


def guest_used(vm: VM, held: int) -> int:
    """What the guest uses itself (the balloon driver's total - free), below `memhost`."""
    low, high = GUEST_USED
    return min(int(vm.maxmem * (low + (high - low) * unit(vm.vmid, 2))), held or vm.maxmem)


def balloon_enabled(vm: VM) -> bool:
    """The balloon device exists unless `balloon: 0`."""
    return str(vm.config.get("balloon", "")) != "0"


def vmstatus(cluster: ClusterState, vm: VM, full: bool, now: float | None = None) -> dict[str, Any]:
    """One VM's `vmstatus` entry (with the QMP part when `full`)."""
    now = time.time() if now is None else now
    running = vm.running
    d: dict[str, Any] = {
        "vmid": vm.vmid,
        "status": "running" if running else "stopped",
        "disk": 0,
        "maxdisk": cluster.disk_size(vm),
        "cpus": cpus(cluster, vm),
        "name": vm.name,
        "maxmem": vm.maxmem,
    }
    if running:
        d["pid"] = 10000 + vm.vmid % 50000
    balloon = vm.config.get("balloon")
    if balloon not in (None, 0, "0"):
        d["balloon_min"] = int(balloon) * MIB
        d["shares"] = int(vm.config.get("shares", 1000))
    seconds = uptime(vm, now)
    held = cluster.usage.memory_of(vm.vmid) if running else 0
    counted = nics(vm, seconds) if running else iter(())
    devices = {name: {"netin": i, "netout": o} for name, i, o in counted}
    d.update(
        uptime=seconds,
        cpu=cpu_fraction(vm, now),
        mem=held,
        netout=sum(nic["netout"] for nic in devices.values()),
        netin=sum(nic["netin"] for nic in devices.values()),
    )
    if cluster.version != "8.4":
        d["memhost"] = held
    _config_flags(vm, d)
    if running and cluster.version != "8.4":
        d.update(pressures(vm, now))
    if full:
        _add_qmp(cluster, vm, d, devices, now)
    return d


def _config_flags(vm: VM, d: dict[str, Any]) -> None:
    if vm.is_template:
        d["template"] = 1
    if any(k.startswith("serial") and vm.config[k] for k in vm.config):
        d["serial"] = 1
    for key in ("lock", "tags"):
        if key in vm.config:
            d[key] = vm.config[key]


def pressures(vm: VM, now: float) -> dict[str, float]:
    """The cgroup's PSI avg10 percentages (9.x): a little CPU and IO stall, no memory."""
    if vm.paused:
        return {f"pressure{name}": 0.0 for name in PRESSURES}
    window = int(now // 10)
    cpu_some = round(2.0 * unit(vm.vmid, 90) * unit(vm.vmid, window + 1), 2)
    io_some = round(0.8 * unit(vm.vmid, 91) * unit(vm.vmid, window + 2), 2)
    values = (cpu_some, round(cpu_some * 0.3, 2), io_some, round(io_some * 0.8, 2), 0.0, 0.0)
    return {f"pressure{name}": value for name, value in zip(PRESSURES, values, strict=True)}


def _add_qmp(
    cluster: ClusterState, vm: VM, d: dict[str, Any], devices: dict[str, Any], now: float
) -> None:
    """What the QMP queries add for a running VM; `qmpstatus` falls back to `status`."""
    if not vm.running:
        d["qmpstatus"] = d["status"]
        return
    d["qmpstatus"] = "paused" if vm.paused else "running"
    d["nics"] = devices
    seconds = d["uptime"]
    counts = {key: (read, written) for key, read, written in drives(vm, seconds)}
    d["blockstat"] = {key: block_stats(vm, rw, seconds) for key, rw in counts.items()}
    d["diskread"] = sum(read for read, _ in counts.values())
    d["diskwrite"] = sum(written for _, written in counts.values())
    d["running-machine"] = running_machine(cluster.version, vm.config)
    d["running-qemu"] = QEMU[cluster.version][0]
    d["proxmox-support"] = proxmox_support(cluster.version)
    if balloon_enabled(vm):
        _add_balloon(vm, d, now)


def running_machine(version: str, config: dict[str, Any]) -> str:
    """Machine.pm: `pc`/`q35` resolve to this QEMU's versioned type with +pveN; a pinned
    type keeps its version and gets +pve0 when it names no revision."""
    _qemu, machine_version, revision = QEMU[version]
    kind = parse_props(str(config.get("machine", "")), "type").get("type", "pc")
    if kind in ("pc", "q35"):
        base = "pc-i440fx" if kind == "pc" else "pc-q35"
        return f"{base}-{machine_version}+pve{revision}"
    return kind if "+pve" in kind else f"{kind}+pve0"


def proxmox_support(version: str) -> dict[str, Any]:
    """query-proxmox-support of pve-qemu's patched QEMU."""
    flags = ["pbs-dirty-bitmap", "query-bitmap-info", "pbs-dirty-bitmap-savevm"]
    flags += ["pbs-dirty-bitmap-migration", "pbs-masterkey", "backup-max-workers"]
    flags += ["backup-fleecing", "backup-access-api"]
    return {**dict.fromkeys(flags, True), "pbs-library-version": PBS_LIBRARY[version]}


ZERO_STATS = [
    f"{prefix}{kind}_operations"
    for prefix in ("failed_", "invalid_")
    for kind in ("rd", "wr", "flush", "unmap", "zone_append")
]
ZERO_STATS += ["unmap_operations", "zone_append_operations", "unmap_bytes", "zone_append_bytes"]
ZERO_STATS += ["rd_merged", "wr_merged", "unmap_merged", "zone_append_merged"]
ZERO_STATS += ["unmap_total_time_ns", "zone_append_total_time_ns"]


def block_stats(vm: VM, rw: tuple[int, int], seconds: int) -> dict[str, Any]:
    """QEMU's BlockDeviceStats for one drive (query-blockstats), from its byte counts."""
    read, written = rw
    reads, writes, flushes = read // 32768, written // 16384, written // (2 * MIB)
    stats: dict[str, Any] = dict.fromkeys(ZERO_STATS, 0)
    stats.update(
        rd_bytes=read,
        wr_bytes=written,
        rd_operations=reads,
        wr_operations=writes,
        flush_operations=flushes,
        rd_total_time_ns=reads * 1_400_000,
        wr_total_time_ns=writes * 400_000,
        flush_total_time_ns=flushes * 48_000,
        wr_highest_offset=min(written * 3, 2**36),
        idle_time_ns=int(1e9 * (1 + unit(vm.vmid, 100) * max(seconds, 1) / 50)),
        account_invalid=True,
        account_failed=True,
        timed_stats=[],
    )
    return stats


def _add_balloon(vm: VM, d: dict[str, Any], now: float) -> None:
    """query-balloon of pve-qemu: `mem` becomes what the guest itself uses."""
    total = vm.maxmem - 4 * MIB * (1 + vm.maxmem // (1024 * MIB))
    used = guest_used(vm, d["mem"])
    info = {
        "actual": vm.maxmem,
        "max_mem": vm.maxmem,
        "total_mem": total,
        "free_mem": total - used,
        "mem_swapped_in": 0,
        "mem_swapped_out": 0,
        "major_page_faults": int(300 + 3000 * unit(vm.vmid, 110)),
        "minor_page_faults": int(d["uptime"] * 150 + 200_000 * unit(vm.vmid, 111)),
        "last_update": int(now) - int(now) % 2,
    }
    d.update(balloon=info["actual"], freemem=info["free_mem"], mem=used, ballooninfo=info)


def resource_entry(cluster: ClusterState, vm: VM, now: float) -> dict[str, Any]:
    """The pvestatd broadcast of one VM as /cluster/resources shows it (API2Tools.pm
    `extract_vm_stats`): the full figures of this moment, stopped VMs with zeros. Built
    directly (only the sums), as the tick does it for every VM."""
    entry: dict[str, Any] = {
        "id": f"qemu/{vm.vmid}",
        "vmid": vm.vmid,
        "type": "qemu",
        "name": vm.name,
        "status": "running" if vm.running else "stopped",
        "template": 1 if vm.is_template else 0,
        "uptime": 0,
        "maxcpu": cpus(cluster, vm),
        "cpu": 0,
        "maxmem": vm.maxmem,
        "mem": 0,
        "maxdisk": cluster.disk_size(vm),
        "disk": 0,
        "netin": 0,
        "netout": 0,
        "diskread": 0,
        "diskwrite": 0,
    }
    held = 0
    if vm.running:
        held = cluster.usage.memory_of(vm.vmid)
        seconds = entry["uptime"] = uptime(vm, now)
        entry["cpu"] = cpu_fraction(vm, now)
        entry["mem"] = guest_used(vm, held) if balloon_enabled(vm) else held
        for _name, netin, netout in nics(vm, seconds):
            entry["netin"] += netin
            entry["netout"] += netout
        for _key, read, written in drives(vm, seconds):
            entry["diskread"] += read
            entry["diskwrite"] += written
    if cluster.version != "8.4":
        entry["memhost"] = held
    return entry
