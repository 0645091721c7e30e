"""Power actions on a VM, decided by its real state in Proxmox (checked first).

start/stop/shutdown of a VM already in the wanted state succeed at once; restart, reset
and pause need a running VM and fail clearly otherwise. The guest's identity is checked
after its state is read and before anything is written or sent (`IdentityMismatch`: the
row stays as it was). HA-managed VMs: the client waits for the real state change, not
for the `hastart`/`hastop` task. After a start the IPv4 is read through the guest agent
(cloud-init off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openvle_core.db.enums import VmStatus
from openvle_core.db.models import Operation, Vm
from openvle_core.guests.errors import IdentityMismatch
from openvle_core.guests.identity import pool_node, require_pool_node, require_vmid
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.proxmox.models import VmConfig
from openvle_core.proxmox.models import VmStatus as PveStatus
from openvle_core.vms.errors import InvalidPowerState
from openvle_core.vms.guard import confirm_vm, is_still_ours
from openvle_core.vms.ipv4 import read_agent_ip
from openvle_core.vms.records import load_vm, update_vm, update_vm_noting

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

TRANSITION = {
    "start": VmStatus.STARTING,
    "restart": VmStatus.STARTING,
    "resume": VmStatus.STARTING,
    "stop": VmStatus.STOPPING,
    "shutdown": VmStatus.STOPPING,
}


@dataclass(frozen=True, slots=True)
class Fresh:
    """A guest this very run has just cloned, confirmed as ours on `config` and
    configured (the update carried that config's digest, so the guest checked was the
    guest changed): its node and state are known and its config (net0, agent) is at hand,
    so the start that follows reads neither again; `vm` is the row as the configure
    step's write left it (`starting` already when that step knew the start follows)."""

    node: str
    status: VmStatus
    config: VmConfig
    vm: Vm


def db_status(status: PveStatus) -> VmStatus:
    """Our status for Proxmox's live state."""
    if status.status == "stopped":
        return VmStatus.STOPPED
    if status.qmpstatus in {"paused", "suspended"}:
        return VmStatus.PAUSED
    return VmStatus.RUNNING


def already_done(action: str, state: VmStatus) -> bool:
    """Whether the VM is already where the action would take it."""
    return (
        (action == "start" and state is VmStatus.RUNNING)
        or (action in {"stop", "shutdown"} and state is VmStatus.STOPPED)
        or (action == "pause" and state is VmStatus.PAUSED)
        or (action == "resume" and state is VmStatus.RUNNING)
    )


def refuse(action: str, state: VmStatus, vmid: int) -> None:
    """Raise for actions the VM's state does not allow."""
    if action in {"restart", "reset", "pause"} and state is not VmStatus.RUNNING:
        raise InvalidPowerState(f"cannot {action} VM {vmid}: it is {state.value}, not running")
    if action == "resume" and state is VmStatus.STOPPED:
        raise InvalidPowerState(f"cannot resume VM {vmid}: it is stopped (start it instead)")
    if action == "start" and state is VmStatus.PAUSED:
        raise InvalidPowerState(f"cannot start VM {vmid}: it is paused (resume it instead)")


async def apply_action(
    runtime: Runtime, action: str, node: str, vmid: int, force: bool
) -> PveStatus:
    """Send the action and wait for the resulting state."""
    pve = runtime.proxmox
    if action == "start":
        return await pve.start_vm(node, vmid)
    if action == "stop":
        return await pve.stop_vm(node, vmid)
    if action == "shutdown":
        guest = int(runtime.settings.worker.shutdown_timeout)
        return await pve.shutdown_vm(
            node, vmid, force_stop=force, guest_timeout=guest, task_timeout=guest + 60.0
        )
    if action == "restart":
        return await pve.reboot_vm(node, vmid)
    if action == "reset":
        return await pve.reset_vm(node, vmid)
    if action == "pause":
        return await pve.suspend_vm(node, vmid)
    return await pve.resume_vm(node, vmid)


async def power_vm(
    runtime: Runtime, op: Operation, vm_id: str, action: str, *, fresh: Fresh | None = None
) -> VmConfig | None:
    """Bring the VM to the state `action` asks for (idempotent). `fresh`: the guest was
    just cloned and configured by this run (its state and identity need no re-read).
    Returns the guest's config if it was read and confirmed as ours at the end (after
    the IP lookup), for a next step to use as its identity check."""
    agent_ip = action == "start" and not runtime.settings.cloudinit.enabled
    if fresh is not None and agent_ip and fresh.status is VmStatus.STOPPED:
        return await _start_fresh(runtime, op, vm_id, fresh)
    vm = await load_vm(runtime.sessions, vm_id)
    vmid = require_vmid(vm)
    if fresh is not None:
        node, current, config = fresh.node, fresh.status, fresh.config
    else:
        node = await require_pool_node(runtime.proxmox, vmid)
        current = db_status(await runtime.proxmox.vm_status(node, vmid))
        config = await confirm_vm(runtime, vm, node, action)  # after the state read
    done = already_done(action, current)
    if done:
        await update_vm(runtime.sessions, vm_id, status=current.value, node=node)
    else:
        refuse(action, current, vmid)
        await update_vm(
            runtime.sessions, vm_id, status=TRANSITION.get(action, current).value, node=node
        )
        force = bool(op.params.get("force", False))
        final = await apply_action(runtime, action, node, vmid, force)
        ha = final.ha.managed
        await update_vm(runtime.sessions, vm_id, status=db_status(final).value, ha_managed=ha)
    await journal.write(
        runtime.sessions,
        op,
        Journal(power=action, status=(await load_vm(runtime.sessions, vm_id)).status),
    )
    if action in {"start", "restart", "resume"} and not runtime.settings.cloudinit.enabled:
        vm = await load_vm(runtime.sessions, vm_id)
        return await read_agent_ip(runtime, op, vm, node, config=config, booting=not done)
    return None


async def _start_fresh(
    runtime: Runtime, op: Operation, vm_id: str, fresh: Fresh
) -> VmConfig | None:
    """Start a guest this run has just cloned and configured, and read its address. The
    start's task is not waited for on its own: an address from the agent proves the VM
    runs (so the start ended well); only when the agent has none yet is the task's end
    asked for (a failed start raises as before). The address and the running state are
    written in one commit."""
    vm = fresh.vm
    if vm.status != VmStatus.STARTING.value or vm.node != fresh.node:
        vm = await update_vm(
            runtime.sessions, vm_id, status=VmStatus.STARTING.value, node=fresh.node
        )
    vmid = require_vmid(vm)
    upid = await runtime.proxmox.send_start(fresh.node, vmid)
    started: PveStatus | None = None

    async def start_ended() -> None:
        nonlocal started
        if started is None:
            started = await runtime.proxmox.finish_start(fresh.node, vmid, upid)

    def running() -> dict[str, Any]:
        ha = started.ha.managed if started is not None else False
        return {"status": VmStatus.RUNNING.value, "ha_managed": ha}

    entry = Journal(power="start", status=VmStatus.RUNNING.value)
    confirmed = await read_agent_ip(
        runtime,
        op,
        vm,
        fresh.node,
        config=fresh.config,
        booting=True,
        start_ended=start_ended,
        with_address=(entry, running),
    )
    if confirmed is None:  # no address: the running state was not written with it
        await update_vm_noting(runtime.sessions, vm_id, op, entry, **running())
    return confirmed


async def refresh_status(runtime: Runtime, op: Operation, exc: BaseException) -> None:
    """After a failure, show the VM's real state instead of a transitional one, read from
    its guest only while that is still ours (a refusal leaves the row as it was)."""
    if op.target_id is None or isinstance(exc, IdentityMismatch):
        return
    vm = await load_vm(runtime.sessions, op.target_id)
    if vm.vmid is None:
        return
    node = await pool_node(runtime.proxmox, vm.vmid)
    if not node:
        return
    status = db_status(await runtime.proxmox.vm_status(node, vm.vmid))
    if await is_still_ours(runtime, vm, node):
        await update_vm(runtime.sessions, vm.id, status=status.value, node=node)
