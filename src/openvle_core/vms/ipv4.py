"""The VM's IPv4 through the guest agent, after a start (cloud-init off).

Polls until the agent reports a usable address on net0's interface or the per-VM timeout
(`WORKER_AGENT_IP_TIMEOUT`) passes. No agent configured, or an agent that never answers,
is recorded on the operation (`ip_missing`) and is not a failure of the start. The polls
ask the agent only, with a growing pause (first `WORKER_AGENT_IP_FIRST_POLL`: a guest
needs a while to boot and lease an address), on the config the start confirmed (its
net0 MAC, its agent option); the guest's identity is checked on a config read right
before the address is written, so a foreign guest's address never reaches our row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from openvle_core.db.models import Operation, Vm
from openvle_core.operations import journal
from openvle_core.operations.journal import Journal
from openvle_core.proxmox.agent import NO_AGENT, NO_NET0
from openvle_core.proxmox.models import VmConfig
from openvle_core.vms.guard import confirm_vm
from openvle_core.vms.records import update_vm_noting

if TYPE_CHECKING:
    from openvle_core.runtime import Runtime

FINAL_REASONS = frozenset({NO_AGENT, NO_NET0})
MAX_POLL = 2.0
FACTOR = 1.5


async def read_agent_ip(
    runtime: Runtime,
    op: Operation,
    vm: Vm,
    node: str,
    *,
    config: VmConfig | None = None,
    booting: bool = False,
    start_ended: Callable[[], Awaitable[None]] | None = None,
    with_address: tuple[Journal, Callable[[], dict[str, Any]]] | None = None,
) -> VmConfig | None:
    """Wait for the agent's IPv4, store it on the VM. `config`: the guest's config as
    confirmed before the start (read now if not given); `booting`: the guest was just
    started (its agent is not up yet: the first read waits); `start_ended`: waits for the
    end of a start not yet waited for (raising if it failed), called once the agent has
    no address to give; `with_address`: a journal entry and the row's other fields
    (asked for when the address is written) to write in the address's commit. Returns the
    config read to confirm the guest right before the address was written (None if no
    address, and then nothing of `with_address` was written)."""
    assert vm.vmid is not None
    vm_id, vmid = vm.id, vm.vmid
    worker = runtime.settings.worker
    timeout = worker.agent_ip_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if config is None:
        config = await confirm_vm(runtime, vm, node, "read_ip")
    first = min(worker.agent_ip_first_poll, timeout / 4)
    if booting:
        await asyncio.sleep(first)
    delay = first / 4
    while True:
        lookup = await runtime.proxmox.get_ipv4(node, vmid, config=config)
        if lookup.address is not None:
            confirmed = await confirm_vm(runtime, vm, node, "read_ip")
            address = str(lookup.address)
            entry, fields = Journal(ipv4=address), {"ipv4": address}
            if with_address is not None:
                noted, more = with_address
                entry = Journal(ipv4=address, **noted.model_dump(exclude_unset=True))
                fields.update(more())
            await update_vm_noting(runtime.sessions, vm_id, op, entry, **fields)
            return confirmed
        if start_ended is not None:
            await start_ended()  # no address yet: did the start itself end well?
            start_ended = None
        reason = lookup.reason or "no address"
        if reason in FINAL_REASONS or loop.time() + delay > deadline:
            await journal.write(runtime.sessions, op, Journal(ip_missing=reason))
            return None
        await asyncio.sleep(delay)
        delay = min(delay * FACTOR, max(first, MAX_POLL))
