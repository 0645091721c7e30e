"""The client against the simulator over a real socket: TLS, auth, reads, privileges."""

from __future__ import annotations

import httpx
import pytest

from openvle_core.proxmox import (
    ProxmoxAuthFailed,
    ProxmoxPermissionDenied,
    ProxmoxTlsError,
)
from openvle_pvesim import Simulator
from tests.proxmox.simclient import ADMIN_TOKEN, Harness, open_harness, settings_for


async def test_version_with_tls_verified(h: Harness) -> None:
    version = await h.client.version()
    assert version.release == h.sim.version
    await h.client.version()
    assert h.sent.count("GET", "/version") == 1  # read once, then cached


async def test_tls_verification_off(sim: Simulator) -> None:
    stack: list[httpx.AsyncClient] = []
    harness = await open_harness(sim, settings_for(sim, verify=False), stack)
    try:
        assert (await harness.client.version()).release == sim.version
    finally:
        await stack[0].aclose()


async def test_tls_verification_against_system_cas_fails(sim: Simulator) -> None:
    stack: list[httpx.AsyncClient] = []
    harness = await open_harness(sim, settings_for(sim, verify=True), stack)
    try:
        with pytest.raises(ProxmoxTlsError, match="PVE_VERIFY_SSL"):
            await harness.client.version()
        assert harness.sent.count("GET", "/version") == 1  # permanent: not retried
    finally:
        await stack[0].aclose()


async def test_bad_token_is_auth_failed_with_hint(sim: Simulator) -> None:
    stack: list[httpx.AsyncClient] = []
    harness = await open_harness(sim, settings_for(sim, secret="not-the-secret"), stack)
    try:
        with pytest.raises(ProxmoxAuthFailed, match="privsep") as info:
            await harness.client.nodes()
        assert info.value.status == 401
        assert "not-the-secret" not in str(info.value)
    finally:
        await stack[0].aclose()


async def test_reads_are_typed(h: Harness) -> None:
    nodes = await h.client.nodes()
    assert {n.node for n in nodes} == {"pve1", "pve2", "pve3"}
    status = await h.client.node_status("pve1")
    assert status.memory.total > status.memory.used > 0
    assert await h.client.next_vmid() >= 100


async def test_cluster_resources_fill_pool_membership(h: Harness) -> None:
    resources = await h.client.cluster_resources("vm")
    ours = {r.vmid for r in resources if r.pool == "OpenVLE-VMs"}
    assert ours == {9000, 9001, 9002}
    assert set(h.client.pool_members) == ours
    assert {r.vmid for r in resources} == ours  # Other-Team's VMs are invisible to us


async def test_check_privileges_ci_token_has_everything(h: Harness) -> None:
    report = await h.client.check_privileges()
    assert report.release == h.sim.version
    assert report.missing == {feature: [] for feature in report.missing}
    assert report.ok


def add_limited_token(sim: Simulator) -> str:
    """A token holding only VM.Audit + VM.Clone on our pool and nothing else."""
    token, secret = "teacher@pve!ro", "f00dfeed-0000-4000-8000-000000000001"
    sim.cluster.access.add_token(token, secret, privsep=False)
    sim.cluster.access.add_role("VLE-ReadClone", ["VM.Audit", "VM.Clone"])
    sim.cluster.access.set_acl("/pool/OpenVLE-VMs", "teacher@pve", "VLE-ReadClone")
    return secret


async def test_check_privileges_names_what_is_missing(sim: Simulator) -> None:
    secret = add_limited_token(sim)
    stack: list[httpx.AsyncClient] = []
    settings = settings_for(sim, "teacher@pve!ro", secret=secret)
    harness = await open_harness(sim, settings, stack)
    try:
        report = await harness.client.check_privileges()
        assert report.release == sim.version
        assert [(m.path, m.privileges) for m in report.missing["ha"]] == [
            ("/", ("Sys.Audit",)),
            ("/", ("Sys.Console",)),
        ]
        missing_core = {m.privileges[0] for m in report.missing["core"]}
        assert "VM.Allocate" in missing_core
        assert "VM.Audit" not in missing_core
        agent_privs = report.missing["guest_agent"][0].privileges
        expected = "VM.Monitor" if sim.version == "8.4" else "VM.GuestAgent.Audit"
        assert agent_privs[0] == expected
        assert not report.ok
    finally:
        await stack[0].aclose()


async def test_missing_privilege_is_permission_denied(h: Harness) -> None:
    with pytest.raises(ProxmoxPermissionDenied) as info:
        await h.client._api.get("/access/permissions", {"userid": ADMIN_TOKEN})
    assert info.value.acl_path == "/access"
    assert info.value.privileges == ("Sys.Audit",)
