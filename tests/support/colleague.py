"""Another Proxmox user on the same cluster: an admin or a colleague with the full-rights
token, acting over the simulator's real HTTP API (not through our client, nor its pool
guard), as a person in the web UI or another tool would."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx

from openvle_pvesim import Simulator

ADMIN_TOKEN = "root@pam!admin"


class Colleague:
    """`async with Colleague(sim) as other:` then remove, create, start VMs by hand."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        secret = sim.tokens[ADMIN_TOKEN]
        self.http = httpx.AsyncClient(
            base_url=sim.url,
            verify=ssl.create_default_context(cafile=sim.ca_file) if sim.ca_file else False,
            headers={"Authorization": f"PVEAPIToken={ADMIN_TOKEN}={secret}"},
            timeout=30.0,
        )

    async def __aenter__(self) -> Colleague:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, **params: Any) -> Any:
        """One API call; the `data` of the answer (an error raises)."""
        if method in {"GET", "DELETE"}:
            reply = await self.http.request(method, path, params=params)
        else:
            reply = await self.http.request(method, path, data=params)
        reply.raise_for_status()
        return reply.json()["data"]

    async def wait(self, upid: str) -> None:
        """Until the task has stopped; it must have ended OK."""
        node = upid.split(":")[1]
        while True:
            status = await self.call("GET", f"/nodes/{node}/tasks/{upid}/status")
            if status["status"] == "stopped":
                assert status.get("exitstatus") == "OK", status
                return
            await asyncio.sleep(0.01)

    async def remove_vm(self, vmid: int) -> None:
        """What an admin does by hand: HA resource off, stop, destroy with purge."""
        node = self.sim.cluster.vms[vmid].node
        if vmid in self.sim.cluster.ha:
            await self.call("DELETE", f"/cluster/ha/resources/vm:{vmid}")
        if self.sim.cluster.vms[vmid].running:
            await self.wait(await self.call("POST", f"/nodes/{node}/qemu/{vmid}/status/stop"))
        await self.wait(await self.call("DELETE", f"/nodes/{node}/qemu/{vmid}", purge=1))

    async def create_vm(
        self, vmid: int, name: str, *, node: str = "pve2", pool: str = "OpenVLE-VMs"
    ) -> None:
        """POST /nodes/{node}/qemu with this vmid, in `pool` (a colleague's new VM)."""
        params = {"vmid": vmid, "name": name, "pool": pool, "memory": 1024, "cores": 1}
        await self.wait(await self.call("POST", f"/nodes/{node}/qemu", **params))

    async def start_vm(self, vmid: int) -> None:
        node = self.sim.cluster.vms[vmid].node
        await self.wait(await self.call("POST", f"/nodes/{node}/qemu/{vmid}/status/start"))

    async def next_id(self) -> int:
        return int(await self.call("GET", "/cluster/nextid"))

    async def make_template(self, vmid: int) -> None:
        node = self.sim.cluster.vms[vmid].node
        await self.wait(await self.call("POST", f"/nodes/{node}/qemu/{vmid}/template"))
