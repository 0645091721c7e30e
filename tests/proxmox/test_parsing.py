"""Pure parts: error classification, UPIDs, IP choice, privilege evaluation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from openvle_core.errors import ConflictError, NotFoundError
from openvle_core.proxmox import agent, privileges
from openvle_core.proxmox.errors import (
    OutsidePool,
    ProxmoxAuthFailed,
    ProxmoxConflict,
    ProxmoxError,
    ProxmoxNotFound,
    ProxmoxPermissionDenied,
    ProxmoxUnavailable,
    ProxmoxValidationError,
    translate_response,
)
from openvle_core.proxmox.models import AgentInterface, VmConfig
from openvle_core.proxmox.tasks import Upid


@pytest.mark.parametrize(
    ("status", "message", "errors", "expected"),
    [
        (401, "Authentication failed!", None, ProxmoxAuthFailed),
        (403, "Permission check failed (/vms/100, VM.Allocate)\n", None, ProxmoxPermissionDenied),
        (500, "VM is locked (clone)\n", None, ProxmoxConflict),
        (
            400,
            "Parameter verification failed.\n",
            {"newid": "VM 105 already exists"},
            ProxmoxConflict,
        ),
        (
            500,
            "Configuration file 'nodes/pve1/qemu-server/9.conf' does not exist\n",
            None,
            ProxmoxNotFound,
        ),
        (400, "Parameter verification failed.\n", {"upid": "no such task"}, ProxmoxNotFound),
        (
            400,
            "Parameter verification failed.\n",
            {"name": "invalid format"},
            ProxmoxValidationError,
        ),
        (595, "Errors during connection establishment", None, ProxmoxUnavailable),
        (
            500,
            "can't lock file '/var/lock/qemu-server/lock-1.conf' - got timeout\n",
            None,
            ProxmoxUnavailable,
        ),
        (501, "Method 'GET /foo' not implemented", None, ProxmoxError),
    ],
)
def test_translate_response_classes(
    status: int, message: str, errors: dict[str, str] | None, expected: type[ProxmoxError]
) -> None:
    error = translate_response(status, message, errors, method="GET", path="/x")
    assert type(error) is expected
    assert error.status == status


def test_permission_denied_parses_path_and_any_privileges() -> None:
    msg = "Permission check failed (/vms/100, VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted)\n"
    error = translate_response(403, msg, None, method="GET", path="/x")
    assert isinstance(error, ProxmoxPermissionDenied)
    assert error.acl_path == "/vms/100"
    assert error.privileges == ("VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted")


def test_domain_flavours() -> None:
    locked = translate_response(500, "VM is locked (migrate)\n", None, method="POST", path="/x")
    assert isinstance(locked, ConflictError)
    assert isinstance(locked, ProxmoxConflict)
    assert locked.lock == "migrate"
    assert isinstance(OutsidePool(7, "P"), NotFoundError)
    assert "PVEAPIToken=" in translate_response(401, "", None, method="GET", path="/").message


def test_upid_parse() -> None:
    upid = Upid.parse("UPID:pve-mp:00000ACD:00006AE8:679A423B:hastart:112:capmox@pve!capi:")
    assert (upid.node, upid.type, upid.id, upid.user) == (
        "pve-mp",
        "hastart",
        "112",
        "capmox@pve!capi",
    )
    assert upid.is_ha
    with pytest.raises(ValueError, match="not a UPID"):
        Upid.parse("UPID:pve1:bad")


def _iface(name: str, mac: str, *addrs: tuple[str, str]) -> AgentInterface:
    return AgentInterface.model_validate(
        {
            "name": name,
            "hardware-address": mac,
            "ip-addresses": [
                {"ip-address": a, "ip-address-type": t, "prefix": 24} for a, t in addrs
            ],
        }
    )


def test_pick_ipv4_matches_net0_and_skips_noise() -> None:
    interfaces = [
        _iface("lo", "00:00:00:00:00:00", ("127.0.0.1", "ipv4")),
        _iface("docker0", "02:42:ac:11:00:01", ("172.17.0.1", "ipv4")),
        _iface(
            "eth0",
            "bc:24:11:aa:bb:cc",
            ("fe80::1", "ipv6"),
            ("169.254.3.4", "ipv4"),
            ("172.17.5.5", "ipv4"),
            ("10.0.0.5", "ipv4"),
        ),
    ]
    found = agent.pick_ipv4(interfaces, "BC:24:11:AA:BB:CC", [IPv4Network("172.17.0.0/16")])
    assert found.address == IPv4Address("10.0.0.5")
    assert found.interface == "eth0"
    none = agent.pick_ipv4(interfaces[:2], "BC:24:11:AA:BB:CC", [])
    assert none.address is None
    assert none.reason is not None
    assert "BC:24:11:AA:BB:CC" in none.reason


def test_vm_config_agent_and_mac() -> None:
    config = VmConfig.model_validate(
        {
            "digest": "d",
            "agent": "enabled=1,fstrim_cloned_disks=1",
            "net0": "virtio=bc:24:11:00:00:01,bridge=vmbr0",
        }
    )
    assert config.agent_enabled
    assert config.net0_mac == "BC:24:11:00:00:01"
    assert not VmConfig.model_validate({"digest": "d", "agent": "0"}).agent_enabled


def test_privileges_per_version_and_inheritance() -> None:
    held = {"/pool/P": {"VM.Audit": True, "VM.Monitor": True}, "/": {"Sys.Audit": True}}
    needs8 = privileges.requirements((8, 4), "P", [])
    needs9 = privileges.requirements((9, 1), "P", [])
    assert privileges.missing(held, needs8)["guest_agent"] == []
    missing9 = privileges.missing(held, needs9)["guest_agent"]
    assert [m.privileges for m in missing9] == [
        ("VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted")
    ]
    ha = privileges.missing(held, needs9)["ha"]
    assert [(m.path, m.privileges) for m in ha] == [("/", ("Sys.Console",))]
    assert privileges.effective({"/": {"Sys.Audit": True, "X": False}}, "/storage/a") == {
        "Sys.Audit"
    }
