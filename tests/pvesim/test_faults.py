"""Fault injection: the spec grammar, determinism, and every kind over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from openvle_pvesim import Simulator
from openvle_pvesim.faults import FaultInjector, parse_rule
from openvle_pvesim.model import HAService

Connect = Callable[..., httpx.AsyncClient]
SPEC = (
    "status=502:p=0.1:GET /cluster/resources; reset:n=3:*; task_fail=qmclone:n=2; "
    "lock_timeout=qmclone:p=0.2; hang:n=1:/nodes/*/status; agent_not_running=9000:msg=x: y"
)


def test_spec_grammar() -> None:
    rules = FaultInjector(SPEC).rules
    assert [(r.kind, r.method, r.target, r.status, r.probability, r.count) for r in rules] == [
        ("status", "GET", "/cluster/resources", 502, 0.1, None),
        ("reset", None, "*", None, None, 3),
        ("task_fail", None, "qmclone", None, None, 2),
        ("lock_timeout", None, "qmclone", None, 0.2, None),
        ("hang", None, "/nodes/*/status", None, None, 1),
        ("agent_not_running", None, "9000", None, None, None),
    ]
    assert rules[-1].message == "x: y"
    for bad, why in [
        ("explode", "unknown fault kind"),
        ("status=404", "status must be one of"),
        ("task_fail=qmclone:GET /x", "unexpected field"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_rule(bad)


def test_domain_faults_count_and_messages() -> None:
    faults = FaultInjector("task_fail=qmclone:n=2; nextid_collision:n=1; agent_not_running")
    assert [faults.take("task_fail", "qmclone") for _ in range(3)] == ["", "", None]
    assert faults.take("task_fail", "qmstart") is None
    assert faults.take("nextid_collision", "") == ""
    assert faults.take("nextid_collision", "") is None
    assert faults.take("agent_not_running", "123") == ""
    assert faults.fired == {"task_fail": 2, "nextid_collision": 1, "agent_not_running": 1}
    faults.clear()
    assert faults.take("agent_not_running", "123") is None


def _draws(seed: int) -> list[bool]:
    faults = FaultInjector("lock_timeout=qmclone:p=0.5", random_seed=seed)
    return [faults.take("lock_timeout", "qmclone") is not None for _ in range(64)]


def test_probabilities_are_deterministic_under_a_seed() -> None:
    assert _draws(7) == _draws(7)
    assert _draws(7) != _draws(8)
    assert 10 < sum(_draws(7)) < 54


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (502, "Bad Gateway"),
        (595, "Errors during connection establishment, proxy handshake: Connection refused"),
        (596, "Connection timed out"),
    ],
)
async def test_status_faults_reply_once_then_recover(
    sim: Simulator, ci: httpx.AsyncClient, status: int, reason: str
) -> None:
    sim.faults.add("status", "/version", method="GET", status=status, n=1)
    faulty = await ci.get("/version")
    assert (faulty.status_code, faulty.reason_phrase, faulty.content) == (status, reason, b"")
    assert (await ci.get("/version")).status_code == 200
    assert sim.faults.fired["status"] == 1


async def test_status_500_carries_a_json_message(sim: Simulator, ci: httpx.AsyncClient) -> None:
    sim.faults.add("status", "/nodes/{node}/status", status=500, message="got timeout")
    response = await ci.get("/nodes/pve2/status")
    assert response.status_code == 500
    assert response.json() == {"data": None, "message": "got timeout\n"}
    assert (await ci.get("/version")).status_code == 200


async def test_reset_closes_without_a_reply(sim: Simulator, ci: httpx.AsyncClient) -> None:
    sim.faults.add("reset", "/cluster/*", n=1)
    with pytest.raises(httpx.TransportError) as caught:
        await ci.get("/cluster/resources")
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert (await ci.get("/cluster/resources")).status_code == 200
    assert sim.faults.counts() == {"reset:/cluster/*": 1}


async def test_hang_never_answers(sim: Simulator, ci: httpx.AsyncClient) -> None:
    sim.faults.add("hang", "/version", n=1)
    with pytest.raises(httpx.ReadTimeout):
        await ci.get("/version", timeout=0.3)
    assert (await ci.get("/version")).status_code == 200


async def test_http_faults_are_deterministic_under_a_seed(
    make_sim: Callable[..., Any], connect: Connect
) -> None:
    outcomes = []
    for _ in range(2):
        spec = "status=502:p=0.5:GET /version"
        async with make_sim(faults=spec, random_seed=3) as sim, connect(sim) as client:
            outcomes.append([(await client.get("/version")).status_code for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert {200, 502} == set(outcomes[0])


async def _task_status(client: httpx.AsyncClient, upid: str) -> dict[str, Any]:
    node = upid.split(":")[1]
    for _ in range(200):
        status: dict[str, Any] = (await client.get(f"/nodes/{node}/tasks/{upid}/status")).json()[
            "data"
        ]
        if status["status"] == "stopped":
            return status
        await asyncio.sleep(0.01)
    pytest.fail(f"task {upid} never stopped")


async def test_lock_timeout_fails_the_task(sim: Simulator, admin: httpx.AsyncClient) -> None:
    sim.faults.add("lock_timeout", "qmcl*", n=1)
    first = await admin.post("/nodes/pve1/qemu/9000/clone", data={"newid": "150"})
    assert first.status_code == 200  # the failure shows only in the task
    status = await _task_status(admin, first.json()["data"])
    assert status["exitstatus"].startswith("can't lock file '/var/lock/qemu-server/lock-")
    assert status["exitstatus"].endswith("' - got timeout")
    second = await admin.post("/nodes/pve1/qemu/9000/clone", data={"newid": "151"})
    assert (await _task_status(admin, second.json()["data"]))["exitstatus"] == "OK"
    assert sim.faults.fired["lock_timeout"] == 1


async def test_another_client_takes_the_vmid_before_a_read(
    sim: Simulator, ci: httpx.AsyncClient
) -> None:
    """`vmid_takeover`: the VM is destroyed (HA entry purged) and a new, running VM of
    someone else sits on its vmid, in its pool, before the read is answered."""
    sim.faults.add("vmid_takeover", "10*", n=1, message="{name}")
    for vmid in (9000, 200):  # a template, a VM outside the target: never taken
        assert (await ci.get(f"/nodes/pve1/qemu/{vmid}/config")).status_code in (200, 403)
    upid = (
        await ci.post(
            "/nodes/pve1/qemu/9000/clone",
            data={"newid": 100, "name": "lab-9", "pool": "OpenVLE-VMs"},
        )
    ).json()
    await _task_status(ci, upid["data"])
    before = dict(sim.cluster.vms[100].config)
    sim.cluster.ha[100] = HAService(100, {"state": "started"})

    config = (await ci.get("/nodes/pve1/qemu/100/config")).json()["data"]

    assert sim.faults.fired["vmid_takeover"] == 1
    assert config["name"] == "lab-9"  # renamed to ours, as asked
    assert config["vmgenid"] != before["vmgenid"]
    assert config["meta"] != before["meta"]
    assert "serial" not in config["smbios1"]
    assert sim.cluster.vms[100].running
    assert sim.cluster.pool_of(100) == "OpenVLE-VMs"
    assert 100 not in sim.cluster.ha
    assert sim.faults.takeovers == {100: {k: v for k, v in config.items() if k != "digest"}}
    again = (await ci.get("/nodes/pve1/qemu/100/config")).json()["data"]
    assert again == config  # n=1: taken once
