"""`openvle demo --tour` (`make tour`): one lab's whole life on the demo, step by step.

The tour drives the demo's own API over HTTP with the admin token, as the tutorial does
with curl, and names each request it makes: it lists the templates, shows a refused
event (each broken rule in words), creates an event for three participants, deploys it
while each VM's progress is shown as `openvle follow` shows it, lists the VMs with their
addresses, stops one, archives the event, and checks the state after: the event
archived, none of its VMs left in the service or in the Proxmox pool. A step that does
not go as described stops the tour with exit status 1 and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console

from openvle_cli.demo_env import DemoInfo
from openvle_cli.errors import DemoError
from openvle_cli.progress import follow_live
from openvle_core.runtime import Runtime

SLUG = "tour"
PARTICIPANTS = 3
TEMPLATE = "debian-12-template"
POOL = "OpenVLE-VMs"
STEPS = 8


class TourError(DemoError):
    """A step of the tour did not go as described."""

    code = "tour_failed"


def tour_header(info: DemoInfo) -> str:
    """What the tour prints once the demo serves."""
    return "\n".join(
        [
            f"OpenVLE tour: one lab for {PARTICIPANTS} students on a simulated Proxmox VE cluster.",
            f"The API: {info.api_url} (its documentation: {info.docs_url}).",
            "Each step names the request it makes; the tour ends by itself.",
        ]
    )


async def take_tour(info: DemoInfo, runtime: Runtime) -> None:
    """Run every step against the demo at `info` (see the module docstring)."""
    headers = {"Authorization": f"Bearer {info.admin_token}"}
    async with httpx.AsyncClient(base_url=info.api_url, headers=headers, timeout=30) as api:
        await Tour(api, info, runtime, Console(highlight=False, emoji=False)).run()


class Tour:
    """The steps, in order, sharing the API client and the console."""

    def __init__(self, api: httpx.AsyncClient, info: DemoInfo, runtime: Runtime, out: Console):
        self.api, self.info, self.runtime, self.out = api, info, runtime, out
        self.step = 0

    async def run(self) -> None:
        template = await self.templates()
        await self.refused(template)
        event = await self.create(template)
        await self.deploy(event)
        first = await self.vms(event)
        await self.stop(first)
        await self.archive(event)
        await self.clean(event)
        self.say("That was one lab's whole life. The demo stops now; to try it yourself,")
        self.say("run `make demo` and follow the tutorial, docs/tutorial/first-lab.md.")

    def say(self, text: str) -> None:
        self.out.print(text, markup=False, soft_wrap=True)

    def title(self, text: str, request: str) -> None:
        self.step += 1
        self.say(f"\n{self.step}/{STEPS}  {text}\n      {request}")

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        """The JSON answer of a request to the API; TourError unless it is `expect`."""
        got = await self.api.request(method, path, **kwargs)
        if got.status_code != expect:
            raise TourError(f"tour stopped: {method} {path} answered {got.status_code}: {got.text}")
        return got.json()

    async def follow(self, op: dict[str, Any]) -> None:
        """Show the operation and its VMs until it ends, as `openvle follow` does."""
        sessions = self.runtime.sessions
        final = await follow_live(sessions, op["id"], self.out, poll=0.25, indent=6)
        if final.op.state != "succeeded":
            raise TourError(f"tour stopped: {final.op.kind} {final.op.state}: {final.op.error}")

    async def templates(self) -> str:
        self.title("The templates the demo imported from the cluster", "GET /api/v1/templates")
        items = (await self.call("GET", "/templates", 200))["items"]
        for t in items:
            self.say(f"      {t['vmid']}  {t['name']:<22}  on {t['node']}")
        found = [t["id"] for t in items if t["name"] == TEMPLATE]
        if not found:
            raise TourError(f"tour stopped: no template {TEMPLATE}")
        return str(found[0])

    async def refused(self, template: str) -> None:
        self.title("An event that breaks the rules is refused", "POST /api/v1/events")
        bad = event_body(template, slug="Lab 1", participants=3000)
        problem = await self.call("POST", "/events", 422, json=bad)
        for error in problem["errors"]:
            self.say(f"      422  {error['loc'][-1]}: {error['msg']}")

    async def create(self, template: str) -> str:
        self.title(f"Create the event '{SLUG}' for {PARTICIPANTS} students", "POST /api/v1/events")
        event = await self.call("POST", "/events", 201, json=event_body(template))
        self.say(f"      {event['slug']}  {event['status']}  {event['participants']} participants")
        return str(event["id"])

    async def deploy(self, event: str) -> None:
        self.title("Deploy it: every VM as it goes", "POST /api/v1/events/{id}/deploy")
        await self.follow(await self.call("POST", f"/events/{event}/deploy", 202))

    async def vms(self, event: str) -> str:
        self.title("The lab's VMs and their addresses", "GET /api/v1/vms?event_id={id}")
        items = (await self.call("GET", "/vms", 200, params={"event_id": event}))["items"]
        for vm in items:
            self.say(f"      {vm['name']}  {vm['status']}  {vm['ipv4']}  on {vm['node']}")
        return str(items[0]["id"])

    async def stop(self, vm: str) -> None:
        self.title("Stop one", "POST /api/v1/vms/{id}/stop")
        await self.follow(await self.call("POST", f"/vms/{vm}/stop", 202))

    async def archive(self, event: str) -> None:
        self.title("Archive the event: every VM removed", "POST /api/v1/events/{id}/archive")
        await self.follow(await self.call("POST", f"/events/{event}/archive", 202))

    async def clean(self, event: str) -> None:
        self.title("The clean state after", "GET /api/v1/events/{id}, /vms; Proxmox: GET /pools")
        status = (await self.call("GET", f"/events/{event}", 200))["status"]
        left = (await self.call("GET", "/vms", 200, params={"event_id": event}))["items"]
        on_pve = await pool_guests(self.info)
        ours = [g for g in on_pve if str(g.get("name", "")).startswith(f"{SLUG}-")]
        self.say(f"      event {SLUG}: {status}")
        self.say(f"      its VMs in the service: {len(left)}")
        self.say(f"      its VMs on Proxmox: {len(ours)} (the pool {POOL} holds {len(on_pve)})")
        if status != "archived" or left or ours:
            raise TourError("tour stopped: the lab was not removed completely")


def event_body(template: str, slug: str = SLUG, participants: int = PARTICIPANTS) -> dict[str, Any]:
    """An event a month from now, one working day long."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    return {
        "slug": slug,
        "name": "The tour's lab",
        "template_ids": [template],
        "participants": participants,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=8)).isoformat(),
    }


async def pool_guests(info: DemoInfo) -> list[dict[str, Any]]:
    """The guests in our pool, asked of the (simulated) Proxmox VE API with its token."""
    headers = {"Authorization": f"PVEAPIToken={info.pve_token}"}
    verify = info.pve_ca_file or False
    async with httpx.AsyncClient(base_url=info.pve_url, headers=headers, verify=verify) as pve:
        got = await pve.get("/pools", params={"poolid": POOL, "type": "qemu"})
    if got.status_code != 200:
        raise TourError(f"tour stopped: Proxmox answered {got.status_code} for the pool {POOL}")
    members: list[dict[str, Any]] = got.json()["data"][0]["members"]
    return members
