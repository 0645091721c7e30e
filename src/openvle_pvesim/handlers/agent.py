"""/nodes/{node}/qemu/{vmid}/agent/{ping,network-get-interfaces,get-osinfo,shutdown}."""

from __future__ import annotations

import asyncio
from typing import Any

from openvle_pvesim import agent
from openvle_pvesim.contract import Request, route
from openvle_pvesim.handlers.common import req_vm
from openvle_pvesim.vmops import AGENT_SHUTDOWN_SECONDS, set_running


@route("POST", "/nodes/{node}/qemu/{vmid}/agent/ping")
async def ping(req: Request) -> dict[str, Any]:
    vm = req_vm(req)
    agent.require_agent(req.cluster, vm)
    return {"result": {}}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
async def network_get_interfaces(req: Request) -> dict[str, Any]:
    vm = req_vm(req)
    agent.require_agent(req.cluster, vm)
    return {"result": agent.network_interfaces(req.cluster, vm)}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/get-osinfo")
async def get_osinfo(req: Request) -> dict[str, Any]:
    vm = req_vm(req)
    agent.require_agent(req.cluster, vm)
    return {"result": agent.osinfo(vm)}


@route("POST", "/nodes/{node}/qemu/{vmid}/agent/shutdown")
async def agent_shutdown(req: Request) -> dict[str, Any]:
    """guest-shutdown: the guest powers itself off a few (scaled) seconds later."""
    cluster = req.cluster
    vm = req_vm(req)
    agent.require_agent(cluster, vm)
    vm.last_shutdown = "agent"
    delay = cluster.scaled(AGENT_SHUTDOWN_SECONDS)
    if delay <= 0:
        set_running(vm, False)
    else:
        asyncio.get_running_loop().call_later(delay, set_running, vm, False)
    return {"result": {}}
