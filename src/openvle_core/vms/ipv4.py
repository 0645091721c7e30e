"""The VM's IPv4 through the guest agent, after a start (cloud-init off).

Polls until the agent reports a usable address on net0's interface or the per-VM timeout
(`WORKER_AGENT_IP_TIMEOUT`) passes. No agent configured, or an agent that never answers,
is recorded on the operation (`ip_missing`) and is not a failure of the start. Each poll
reads the config the address lookup needs and checks the guest's identity on it, so a
foreign guest's address is never written into our row.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from openvle_core.db.models import Operation, Vm
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.proxmox.agent import NO_AGENT, NO_NET0
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.records import update_vm

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

FINAL_REASONS = frozenset({NO_AGENT, NO_NET0})
MAX_POLL = 2.0


async def read_agent_ip(runtime: Runtime, op: Operation, vm: Vm, node: str) -> str | None:
    """Wait for the agent's IPv4, store it on the VM; None (reason recorded) if none."""
    assert vm.vmid is not None
    vm_id, vmid = vm.id, vm.vmid
    timeout = runtime.settings.worker.agent_ip_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = min(0.2, timeout / 20)
    while True:
        config = await confirm_vm(runtime, vm, node, "read_ip")
        lookup = await runtime.proxmox.get_ipv4(node, vmid, config=config)
        if lookup.address is not None:
            await update_vm(runtime.sessions, vm_id, ipv4=str(lookup.address))
            await journal.write(runtime.sessions, op, Journal(ipv4=str(lookup.address)))
            return str(lookup.address)
        reason = lookup.reason or "no address"
        if reason in FINAL_REASONS or loop.time() + delay > deadline:
            await journal.write(runtime.sessions, op, Journal(ip_missing=reason))
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, MAX_POLL)
