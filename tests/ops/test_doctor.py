"""`openvle doctor` against the simulator on PVE 9.1 and 8.4: a correctly privileged
token passes; a token missing privileges, a bare privsep token, a missing pool, a wrong
secret and an untrusted certificate each fail with the command that fixes them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from openvle_cli.demo import DemoOptions, demo_settings
from openvle_cli.main import main
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.doctor import Check, Status, proxmox_checks, run_doctor
from openvle_core.proxmox import ProxmoxClient, RetryPolicy, build_http_client
from openvle_core.settings import ProxmoxSettings, Settings
from openvle_pvesim import Simulator, run_simulator, start_in_thread
from openvle_pvesim.seeds import AGENT_PRIV, OPENVLE_VM_PRIVS

AGENT = {"9.1": "VM.GuestAgent.Audit", "8.4": "VM.Monitor"}
FINGERPRINT = re.compile(r"SHA-256 (?:[0-9A-F]{2}:){31}[0-9A-F]{2}\b")


@pytest.fixture(params=["9.1", "8.4"])
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    async with run_simulator(version=request.param, tls=True, vms=4) as simulator:
        yield simulator


def settings_for(sim: Simulator, db: str = "sqlite+aiosqlite:///:memory:", **pve: Any) -> Settings:
    """The demo's settings for `sim`, with Proxmox fields overridden."""
    base = demo_settings(sim, db, DemoOptions())
    fields = {**base.proxmox.model_dump(), "retry_attempts": 1, **pve}
    return base.model_copy(update={"proxmox": ProxmoxSettings(_env_file=None, **fields)})


async def checks(settings: Settings) -> dict[str, Check]:
    async with build_http_client(settings.proxmox) as http:
        client = ProxmoxClient(http, settings.proxmox, retry=RetryPolicy(attempts=1))
        return {c.name: c for c in await proxmox_checks(client, settings)}


async def test_correct_token_passes_every_check(sim: Simulator, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await upgrade_to_head(url)
    report = await run_doctor(settings_for(sim, url))
    statuses = {c.name: c.status for c in report.checks}
    assert report.ok, report.as_dict()
    assert statuses["guest agent"] is Status.OK
    assert statuses["redis"] is Status.SKIP
    assert all(
        statuses[f"privileges: {f}"] is Status.OK
        for f in ("core", "cloudinit", "ha", "migration", "guest_agent")
    )
    assert f"PVE {sim.version}" in next(c.detail for c in report.checks if c.name == "proxmox")


async def test_pool_scoped_token_has_nothing_outside_its_pool(sim: Simulator) -> None:
    scope = (await checks(settings_for(sim)))["token scope"]
    assert scope.status is Status.OK, scope.detail
    assert scope.fix == ()


async def test_token_with_rights_on_the_whole_cluster_is_warned_with_the_fix(
    sim: Simulator,
) -> None:
    access = sim.cluster.access
    access.add_user("ops@pve")
    access.set_acl("/", "ops@pve", "Administrator")
    access.add_token("ops@pve!openvle", "wide-secret", False)  # the user's rights: all
    settings = settings_for(
        sim, user="ops@pve", token_name="openvle", token_value=SecretStr("wide-secret")
    )
    report = await checks(settings)
    scope = report["token scope"]
    assert scope.status is Status.WARN
    assert "outside pool OpenVLE-VMs" in scope.detail
    assert scope.detail.count("; ") == 0  # one entry: everything comes from / (propagated)
    assert "/: " in scope.detail
    assert "pveum acl delete / --roles ROLE --users ops@pve --tokens 'ops@pve!openvle'" in (
        scope.fix
    )
    assert scope.fix[0].startswith("pveum acl list")
    assert any("--privsep 1" in line for line in scope.fix)
    assert all(c.status is not Status.FAIL for c in report.values())  # a warning, not a failure


async def test_rights_on_other_vms_are_warned_but_not_the_pools_own(sim: Simulator) -> None:
    access = sim.cluster.access
    for who in ("openvle@pve", "openvle@pve!ci"):  # privilege separation: both need the ACL
        access.set_acl("/vms", who, "PVEVMAdmin")
        access.set_acl("/access", who, "PVEUserAdmin")
    scope = (await checks(settings_for(sim)))["token scope"]
    assert scope.status is Status.WARN
    paths = [line.split()[3] for line in scope.fix if line.startswith("pveum acl delete")]
    assert paths == ["/access", "/vms"]  # /vms/<id> below /vms are not listed again
    assert "/pool/OpenVLE-VMs" not in scope.detail


async def test_a_root_token_is_told_to_use_a_user_of_its_own(sim: Simulator) -> None:
    sim.cluster.access.add_token("root@pam!ovl", "root-secret", False)
    settings = settings_for(
        sim, user="root@pam", token_name="ovl", token_value=SecretStr("root-secret")
    )
    scope = (await checks(settings))["token scope"]
    assert scope.status is Status.WARN
    assert scope.fix[0].startswith("stop using a root@pam token")
    assert "pveum user token add openvle@pve openvle --privsep 1" in " ".join(scope.fix)


async def test_missing_agent_privilege_names_the_version_specific_one(sim: Simulator) -> None:
    sim.cluster.access.add_role("OpenVLE-VMs", OPENVLE_VM_PRIVS)  # without the agent privilege
    assert AGENT_PRIV[sim.version] == AGENT[sim.version]
    found = await checks(settings_for(sim))
    agent = found["privileges: guest_agent"]
    assert agent.status is Status.FAIL
    assert AGENT[sim.version] in agent.detail
    assert agent.fix == (
        f"pveum role modify OpenVLE-VMs --append 1 --privs {AGENT[sim.version]}",
        "pveum acl modify /pool/OpenVLE-VMs --roles OpenVLE-VMs --users openvle@pve "
        "--tokens 'openvle@pve!ci'",
    )
    assert found["guest agent"].status is Status.FAIL
    assert found["privileges: core"].status is Status.OK
    other = "VM.Monitor" if sim.version == "9.1" else "VM.GuestAgent.Audit"
    assert all(other not in " ".join(c.fix) for c in found.values())


async def test_privsep_token_without_acls_fails_with_grants(sim: Simulator) -> None:
    sim.cluster.access.add_token("openvle@pve!bare", "bare-secret", True)
    found = await checks(settings_for(sim, token_name="bare", token_value=SecretStr("bare-secret")))
    assert found["proxmox"].status is Status.OK
    assert found["pool"].status is Status.FAIL
    assert "Pool.Audit" in " ".join(found["pool"].fix)
    core = found["privileges: core"]
    assert core.status is Status.FAIL
    assert "pveum role modify OpenVLE-VMs --append 1 --privs VM.Audit,VM.Clone," in core.fix[0]
    assert any(f.startswith("pveum acl modify /nodes --roles OpenVLE-Nodes") for f in core.fix)
    assert any("/sdn/zones --roles OpenVLE-SDN" in f for f in core.fix)
    ha = found["privileges: ha"]
    assert ha.status is Status.FAIL
    assert ha.fix[-1].startswith("pveum acl modify / --roles OpenVLE-HA")
    assert ha.fix[-1].endswith("--propagate 0")


async def test_missing_pool_suggests_creating_it(sim: Simulator) -> None:
    found = await checks(settings_for(sim, vms_pool="Nope"))
    assert found["pool"].status is Status.FAIL
    # a token cannot tell a missing pool from one it may not see: PVE answers 403 for both
    assert found["pool"].fix == (
        "pveum pool add Nope --comment 'OpenVLE VMs and templates'",
        "pveum role modify OpenVLE-VMs --append 1 --privs Pool.Audit",
        "pveum acl modify /pool/Nope --roles OpenVLE-VMs --users openvle@pve "
        "--tokens 'openvle@pve!ci'",
    )


async def test_wrong_secret_and_untrusted_certificate(sim: Simulator) -> None:
    found = await checks(settings_for(sim, token_value=SecretStr("wrong")))
    assert found["proxmox"].status is Status.FAIL
    assert "pveum user token add openvle@pve ci --privsep 1" in found["proxmox"].fix
    assert list(found) == ["proxmox"]  # nothing else is asked once the token fails
    unverified = (await checks(settings_for(sim, verify_ssl=False)))["tls"]
    assert unverified.status is Status.WARN
    assert FINGERPRINT.search(unverified.detail), unverified.detail
    with pytest.raises(ValidationError, match="path of a CA bundle file"):
        settings_for(sim, verify_ssl=Path("/nonexistent/ca.pem"))  # refused at start-up
    tls = (await checks(settings_for(sim, verify_ssl=True)))["proxmox"]
    assert tls.status is Status.FAIL
    assert FINGERPRINT.search(tls.detail), tls.detail
    assert server_fingerprint(sim) in tls.detail  # the certificate the server presents
    assert tls.fix[-1].startswith("PVE_VERIFY_SSL=")


def server_fingerprint(sim: Simulator) -> str:
    """SHA-256 of the simulator's server certificate (the first of its chain file)."""
    import hashlib
    import ssl

    assert sim.ca_file is not None
    pem = (sim.ca_file.parent / "server.pem").read_text()
    first = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def test_cli_exit_status_and_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with start_in_thread(version="9.1", tls=True, vms=4) as sim:
        env = {
            "PVE_HOSTNAME": sim.hostname,
            "PVE_USER": "openvle@pve",
            "PVE_TOKEN_NAME": "ci",
            "PVE_TOKEN_VALUE": sim.tokens["openvle@pve!ci"],
            "PVE_VERIFY_SSL": str(sim.ca_file),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)  # no .env from the repository
        assert main(["doctor", "--json"]) == 1  # not migrated yet
        failed = json.loads(capsys.readouterr().out)
        assert [c["name"] for c in failed["checks"] if c["status"] == "FAIL"] == ["database"]
        assert main(["migrate"]) == 0
        capsys.readouterr()
        assert main(["doctor"]) == 0
        assert "all checks passed" in capsys.readouterr().out
        sim.cluster.access.set_acl("/", "openvle@pve", "Administrator")  # cluster-wide now
        sim.cluster.access.set_acl("/", "openvle@pve!ci", "Administrator")
        assert main(["doctor"]) == 0  # a warning does not fail the run
        out = capsys.readouterr().out
        assert "all checks passed" not in out
        assert "warnings: token scope" in out
        assert "to fix token scope:" in out


@pytest.mark.parametrize("sim", ["9.1"], indirect=True)
async def test_services_ok_and_unreachable(
    sim: Simulator, redis_url: str, mongodb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openvle_core import doctor
    from openvle_core.doctor import check_mongodb, check_redis
    from openvle_core.settings import MongoSettings, RedisSettings

    monkeypatch.setattr(doctor, "CHECK_TIMEOUT", 1.0)  # the dead ones below time out sooner
    base = settings_for(sim)

    def with_urls(redis: str, mongo: str) -> Settings:
        return base.model_copy(
            update={
                "redis": RedisSettings(_env_file=None, url=SecretStr(redis)),
                "mongodb": MongoSettings(_env_file=None, url=SecretStr(mongo)),
            }
        )

    good = with_urls(redis_url, mongodb_url)
    assert (await check_redis(good)).status is Status.OK
    assert (await check_mongodb(good)).status is Status.OK
    dead = with_urls("redis://127.0.0.1:1/0", "mongodb://127.0.0.1:1/")
    redis, mongo = await check_redis(dead), await check_mongodb(dead)
    assert (redis.status, mongo.status) == (Status.FAIL, Status.FAIL)
    assert "REDIS_URL" in redis.fix[0]
    assert "MONGODB_URL" in mongo.fix[0]


def test_render_prints_fingerprints_and_brackets_verbatim() -> None:
    """`:CD:` in a fingerprint is an emoji code to rich and `[red]` markup: neither is
    interpreted in a check's detail."""
    from rich.console import Console

    from openvle_cli.doctor import render
    from openvle_core.doctor import Check, DoctorReport

    detail = "server certificate SHA-256 AB:CD:EF:12:A:B:[red]x[/red]"
    console = Console(record=True, width=200)
    render(DoctorReport([Check("tls", Status.WARN, detail)]), console)
    assert detail in console.export_text()
