"""Read endpoints through HTTP: nodes, templates, VMs, changelog, pagination, filters."""

from __future__ import annotations

from datetime import UTC, datetime

from openvle_core.db.models import Template
from tests.api.kit import Api, change, node, seed, template, vm


async def _template(api: Api, vmid: int) -> Template:
    row = template(vmid, f"tpl-{vmid}")
    await seed(api.runtime.sessions, row)
    return row


async def test_get_vm_and_node(api: Api) -> None:
    tpl = await _template(api, 9100)
    one = vm(tpl.id, 1100, ipv4="10.0.0.5")
    await seed(api.runtime.sessions, node("pve-read"), one)
    got = await api.client.get(f"/api/v1/vms/{one.id}", headers=api.auth("read"))
    assert got.status_code == 200
    body = got.json()
    assert body["id"] == one.id
    assert body["vmid"] == 1100
    assert body["ipv4"] == "10.0.0.5"
    assert body["status"] == "running"
    assert body["template_id"] == tpl.id
    got = await api.client.get("/api/v1/nodes/pve-read", headers=api.auth("read"))
    assert got.json()["maxcpu"] == 8


async def test_vm_list_pages_in_a_stable_order_with_filters(api: Api) -> None:
    tpl = await _template(api, 9101)
    rows = [vm(tpl.id, 1200 + i, status="running" if i % 2 else "stopped") for i in range(5)]
    await seed(api.runtime.sessions, *rows)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"template_id": tpl.id, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/vms", params=params, headers=api.auth())).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r.id for r in rows]
    params = {"template_id": tpl.id, "status": "stopped"}
    page = (await api.client.get("/api/v1/vms", params=params, headers=api.auth())).json()
    assert [i["vmid"] for i in page["items"]] == [1200, 1202, 1204]


async def test_templates_and_changelog(api: Api) -> None:
    tpl = await _template(api, 9102)
    got = await api.client.get(f"/api/v1/templates/{tpl.id}", headers=api.auth("read"))
    assert got.json()["name"] == "tpl-9102"
    assert got.json()["status"] == "available"
    await seed(api.runtime.sessions, change(tpl.id, "running", "stopped"))
    page = await api.client.get(
        "/api/v1/changelog", params={"entity_id": tpl.id}, headers=api.auth("read")
    )
    items = page.json()["items"]
    assert [(i["old"], i["new"], i["source"]) for i in items] == [("running", "stopped", "sync")]


async def test_changelog_since_and_entity_filters(api: Api) -> None:
    early, late = change("since-vm", "a", "b"), change("since-vm", "b", "c")
    early.time = datetime(2020, 1, 1, tzinfo=UTC)
    late.time = datetime(2030, 1, 1, tzinfo=UTC)
    await seed(api.runtime.sessions, early, late, change("other-vm", "x", "y"))
    params = {"entity": "vm", "entity_id": "since-vm", "since": "2025-01-01T00:00:00Z"}
    got = await api.client.get("/api/v1/changelog", params=params, headers=api.auth("read"))
    assert [(i["old"], i["new"]) for i in got.json()["items"]] == [("b", "c")]
