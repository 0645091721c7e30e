"""The "Proxmox setup" guide's commands (docs/how-to/proxmox-setup.md), applied to the
simulator's access control on each PVE version, give a privilege-separated token that
passes every doctor check; the role line of the other version is rejected as PVE rejects
it ("invalid privilege")."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from pydantic import SecretStr

from openvle_core.doctor import Status
from openvle_pvesim import Simulator, run_simulator
from tests.ops.test_doctor import checks, settings_for

ROOT = Path(__file__).parents[2]
USER, TOKEN = "guide@pve", "guide@pve!openvle"


def setup_commands() -> list[list[str]]:
    """The `pveum` lines of the guide's code blocks, as argument lists (users renamed)."""
    text = (ROOT / "docs" / "how-to" / "proxmox-setup.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("pveum ")]
    return [shlex.split(line.split(" #", 1)[0].replace("openvle@pve", USER)) for line in lines]


def apply(sim: Simulator, command: list[str]) -> None:
    """What `pveum` would do, on the simulator's model (the commands the setup needs)."""
    access = sim.cluster.access
    args = command[3:]
    options = dict(zip(args[1::2], args[2::2], strict=False))
    match command[1:3]:
        case ["role", "add"]:
            access.add_role(args[0], options["--privs"].split(","))
        case ["acl", "modify"]:
            propagate = options.get("--propagate", "1") == "1"
            for who in (options["--users"], options["--tokens"]):
                access.set_acl(args[0], who, options["--roles"], propagate=propagate)
        case ["user", "token"]:
            access.add_token(TOKEN, "guide-secret", options["--privsep"] == "1")
        case ["user", "add"]:
            access.add_user(args[0])
        case _:
            pass  # pools exist in the seed


@pytest.fixture(params=["9.1", "8.4"])
async def sim(request: pytest.FixtureRequest) -> Simulator:
    async with run_simulator(version=request.param, tls=True, vms=4) as simulator:
        yield simulator  # type: ignore[misc]


async def test_setup_guide_passes_doctor(sim: Simulator) -> None:
    commands = setup_commands()
    vm_roles = [c for c in commands if c[1:4] == ["role", "add", "OpenVLE-VMs"]]
    assert len(vm_roles) == 2  # PVE 9.x first, then 8.x
    ours, other = vm_roles if sim.version == "9.1" else vm_roles[::-1]
    with pytest.raises(ValueError, match="invalid privilege"):
        apply(sim, other)
    for command in commands:
        if command not in (ours, other):
            apply(sim, command)
    apply(sim, ours)
    found = await checks(
        settings_for(sim, user=USER, token_name="openvle", token_value=SecretStr("guide-secret"))
    )
    assert {name: c.status for name, c in found.items()} == dict.fromkeys(found, Status.OK)
    assert len(found) == 9  # proxmox, pool, token scope, five privilege features, guest agent
