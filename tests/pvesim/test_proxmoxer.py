"""proxmoxer (a real third-party client) drives a lab scenario against the simulator.

Every request proxmoxer sends goes through the simulator's schema validation; a response
hook records any 400 so the happy path can assert that none was refused, and the
simulator checks every response against the schema (`check_responses=True`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from proxmoxer import AuthenticationError, ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks

from openvle_pvesim import Simulator, start_in_thread

POOL = "OpenVLE-VMs"


@pytest.fixture(params=["9.1", "8.4"])
def lab(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    with start_in_thread(version=request.param, check_responses=True) as sim:
        yield sim
        assert sim.violations == []


def connect(sim: Simulator, secret: str | None = None, token: str = "openvle@pve!ci") -> Any:
    user, name = token.split("!")
    host, port = sim.hostname.rsplit(":", 1)
    return ProxmoxAPI(
        host,
        port=int(port),
        user=user,
        token_name=name,
        token_value=secret or sim.tokens[token],
        verify_ssl=str(sim.ca_file),
        timeout=10,
    )


def record_refusals(api: Any) -> list[str]:
    """Collect every 400 the server answers (request schema violations)."""
    refused: list[str] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code == 400:
            refused.append(f"{response.request.method} {response.url}: {response.text}")

    api._store["session"].hooks["response"].append(hook)
    return refused


def wait(api: Any, node: str, upid: str) -> dict[str, Any]:
    status: dict[str, Any] = Tasks.blocking_status(api, upid, timeout=30, polling_interval=0.05)
    assert status["status"] == "stopped"
    assert upid.startswith(f"UPID:{node}:")
    return status


def test_clone_start_agent_shutdown_delete(lab: Simulator) -> None:
    api = connect(lab)
    refused = record_refusals(api)
    vms = api.cluster.resources.get(type="vm")
    assert {9000, 9001, 9002} <= {vm["vmid"] for vm in vms}
    assert not {vm["vmid"] for vm in vms} & {200, 201, 202}
    newid = int(api.cluster.nextid.get())
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=newid, name="lab-1", pool=POOL, full=0)
    assert wait(api, "pve1", upid)["exitstatus"] == "OK"
    vm = api.nodes("pve1").qemu(newid)
    mac = vm.config.get()["net0"].split(",")[0].split("=")[1]
    assert wait(api, "pve1", vm.status.start.post())["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "running"
    interfaces = vm.agent("network-get-interfaces").get()["result"]
    assert "lo" in {iface["name"] for iface in interfaces}
    assert mac.lower() in {iface["hardware-address"].lower() for iface in interfaces}
    assert wait(api, "pve1", vm.status.shutdown.post())["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "stopped"
    assert wait(api, "pve1", vm.delete(purge=1))["exitstatus"] == "OK"
    assert newid not in {vm["vmid"] for vm in api.cluster.resources.get(type="vm")}
    with pytest.raises(ResourceException) as gone:
        vm.config.get()
    # deleted, it left the pool: the pool-scoped token may not even ask about it
    assert gone.value.status_code == 403
    assert refused == []


def test_bad_token_is_a_401(lab: Simulator) -> None:
    with pytest.raises(ResourceException) as caught:
        connect(lab, secret="not-the-secret").version.get()
    assert caught.value.status_code == 401
    expected = "Authentication failed!" if lab.version == "9.1" else "invalid token value!"
    assert caught.value.content == expected


def test_vm_outside_the_pool_is_refused(lab: Simulator) -> None:
    api = connect(lab)
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve1").qemu(200).status.current.get()
    assert caught.value.status_code == 403
    assert caught.value.content == "Permission check failed (/vms/200, VM.Audit)"
    with pytest.raises(ResourceException) as no_pool:
        api.nodes("pve1").qemu(9000).clone.post(newid=4321, name="lab-2")
    assert no_pool.value.status_code == 403


def wait_for_config(vm: Any) -> dict[str, Any]:
    """The clone task writes the new VM's config shortly after it starts: poll for it."""
    for _ in range(400):
        try:
            config: dict[str, Any] = vm.config.get()
        except ResourceException as exc:
            if "does not exist" not in exc.content:
                raise
            time.sleep(0.025)
        else:
            return config
    pytest.fail("the clone never wrote its config")


@pytest.mark.parametrize("version", ["9.1", "8.4"])
def test_a_vm_being_cloned_is_locked(version: str) -> None:
    with start_in_thread(version=version, time_scale=2.0, check_responses=True) as sim:
        # the clone joins the pool only when its task ends: until then only root may touch it
        api = connect(sim, token="root@pam!admin")
        api.nodes("pve1").qemu(9000).clone.post(newid=4321, name="lab-3", pool=POOL)
        config = wait_for_config(api.nodes("pve1").qemu(4321))
        assert config["lock"] == "clone"
        with pytest.raises(ResourceException) as caught:
            api.nodes("pve1").qemu(4321).config.put(description="mine")
        assert caught.value.status_code == 500
        assert caught.value.content == "VM is locked (clone)"
        assert sim.violations == []


def test_thread_runner_calls_into_the_simulator_loop() -> None:
    runner = start_in_thread(version="9.1")
    with runner as sim:
        assert runner.call(lambda: 9000 in sim.cluster.vms) is True
        sim.faults.add("status", "/version", status=596, n=1)
        api = connect(sim, token="root@pam!admin")
        with pytest.raises(ResourceException) as caught:
            api.version.get()
        assert caught.value.status_code == 596
    assert not runner._thread.is_alive()


def test_password_login_drives_a_lab(lab: Simulator) -> None:
    """proxmoxer's ticket login: POST /access/ticket, then the PVEAuthCookie cookie and
    the CSRFPreventionToken header on every write."""
    host, port = lab.hostname.rsplit(":", 1)
    api = ProxmoxAPI(
        host,
        port=int(port),
        user="openvle@pve",
        password=lab.passwords["openvle@pve"],
        verify_ssl=str(lab.ca_file),
        timeout=10,
    )
    refused = record_refusals(api)
    newid = int(api.cluster.nextid.get())
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=newid, name="pw-1", pool=POOL)
    assert wait(api, "pve1", upid)["user"] == "openvle@pve"
    vm = api.nodes("pve1").qemu(newid)
    assert wait(api, "pve1", vm.status.start.post())["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "running"
    assert newid in {r["vmid"] for r in api.cluster.resources.get(type="vm")}
    assert refused == []
    with pytest.raises(AuthenticationError):
        ProxmoxAPI(
            host, port=int(port), user="openvle@pve", password="wrong", verify_ssl=str(lab.ca_file)
        )
