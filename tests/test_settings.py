"""Settings: defaults that run with nothing installed, and one clear message for all errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from openvle_core.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test from an environment without any of our variables."""
    import os

    prefixes = ("PVE_", "DATABASE_", "MONGODB_", "REDIS_", "WORKER_", "API_", "LOG_")
    for name in list(os.environ):
        if name.startswith(prefixes) or name in {"METRICS_TOKEN", "PROJECT_NAME"}:
            monkeypatch.delenv(name)


def test_defaults_need_nothing_installed() -> None:
    settings = load_settings(env_file=None)
    assert settings.database.url.get_secret_value().startswith("sqlite+aiosqlite:///")
    assert settings.mongodb.url is None
    assert settings.redis.url is None
    assert settings.proxmox.vms_pool == "OpenVLE-VMs"
    assert settings.vms.full_clone_default is False
    assert settings.vms.smbios_metadata is True
    assert settings.vms.ha_enabled is True
    assert settings.cloudinit.enabled is False
    assert settings.worker.pve_periodic_interval == 60
    assert settings.worker.max_retry == 5
    assert settings.project_name == "OpenVLE"


def test_reads_environment_and_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PVE_VMS_POOL=Lab\nWORKER_MAX_RETRY=2\nPROJECT_NAME=Uni\n")
    monkeypatch.setenv("PVE_HOSTNAME", "pve1.example.org:8006")
    monkeypatch.setenv("METRICS_TOKEN", "m-secret")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    settings = load_settings(env_file=env)
    assert settings.proxmox.vms_pool == "Lab"
    assert settings.proxmox.base_url == "https://pve1.example.org:8006/api2/json"
    assert settings.worker.max_retry == 2
    assert settings.project_name == "Uni"
    assert settings.api.metrics_token is not None
    assert settings.api.metrics_token.get_secret_value() == "m-secret"
    assert "m-secret" not in repr(settings)


def test_cloud_init_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVE_CI_ENABLED", "true")
    monkeypatch.setenv("PVE_VMS_NETWORK", "10.20.0.0")
    monkeypatch.setenv("PVE_VMS_SUBNET", "255.255.255.0")
    monkeypatch.setenv("PVE_VMS_GATEWAY", "10.20.0.1")
    monkeypatch.setenv("PVE_VMS_DNS", "10.20.0.2, 9.9.9.9")
    monkeypatch.setenv("PVE_VMS_EXCLUDED_IPS", "10.20.0.1-10.20.0.20, 10.20.0.50")
    monkeypatch.setenv("PVE_VMS_CIPASSWORD", "pw")
    ci = load_settings(env_file=None).cloudinit
    assert ci.ip_network == ipaddress.IPv4Network("10.20.0.0/24")
    assert ci.dns_servers == ["10.20.0.2", "9.9.9.9"]
    ip = ipaddress.IPv4Address
    assert ci.excluded_ranges == [
        (ip("10.20.0.1"), ip("10.20.0.20")),
        (ip("10.20.0.50"), ip("10.20.0.50")),
    ]


def test_every_problem_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVE_HOSTNAME", "no-port-here")
    monkeypatch.setenv("PVE_VMS_NETWORK", "10.20.0.5")
    monkeypatch.setenv("PVE_VMS_SUBNET", "24")
    monkeypatch.setenv("WORKER_MAX_RETRY", "-1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret-pw@db/x")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    names = [name for name, _ in caught.value.problems]
    assert names == [
        "PVE_HOSTNAME",
        "PVE_VMS_SUBNET",
        "DATABASE_URL",
        "WORKER_MAX_RETRY",
        "LOG_LEVEL",
    ]
    message = caught.value.message
    assert "host:port" in message
    assert "does not form a network" in message
    assert "secret-pw" not in message
    header, *lines = message.splitlines()
    assert header == "invalid configuration (5 problems):"
    assert [line.split(":", 1)[0] for line in lines] == [f"  {name}" for name in names]


def test_gateway_and_exclusions_must_lie_in_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVE_VMS_NETWORK", "10.20.0.0")
    monkeypatch.setenv("PVE_VMS_SUBNET", "24")
    monkeypatch.setenv("PVE_VMS_GATEWAY", "10.30.0.1")
    monkeypatch.setenv("PVE_VMS_EXCLUDED_IPS", "10.20.0.250-10.20.1.5")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    problems = dict(caught.value.problems)
    assert set(problems) == {"PVE_VMS_GATEWAY", "PVE_VMS_EXCLUDED_IPS"}
    assert "10.20.0.0/24" in problems["PVE_VMS_GATEWAY"]


def test_cloud_init_settings_required_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(env_file=None).cloudinit.ip_network is None
    monkeypatch.setenv("PVE_CI_ENABLED", "1")
    monkeypatch.setenv("PVE_VMS_NETWORK", "192.168.7.0")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    (name, why), *_ = caught.value.problems
    assert name == "PVE_CI_ENABLED"
    assert "PVE_VMS_SUBNET" in why
    assert "PVE_VMS_GATEWAY" in why
    assert "PVE_VMS_NETWORK" not in why


def test_reversed_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVE_VMS_EXCLUDED_IPS", "10.0.0.9-10.0.0.1")
    with pytest.raises(ConfigError, match="ends before it starts"):
        load_settings(env_file=None)


def test_unparsable_list_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVE_AGENT_IGNORED_NETWORKS", "not json")
    monkeypatch.setenv("API_PORT", "99999")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    names = [name for name, _ in caught.value.problems]
    assert names == ["PVE_AGENT_IGNORED_NETWORKS", "API_PORT"]


def test_verify_ssl_is_a_bool_or_an_existing_ca_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PVE_VERIFY_SSL", "maybe")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert [name for name, _ in caught.value.problems] == ["PVE_VERIFY_SSL"]
    assert "CA bundle" in caught.value.message
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PVE_VERIFY_SSL", str(bundle))
    assert load_settings(env_file=None).proxmox.verify_ssl == bundle
    monkeypatch.setenv("PVE_VERIFY_SSL", "0")
    assert load_settings(env_file=None).proxmox.verify_ssl is False


def test_overrides_win_over_the_environment_and_are_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PVE_VMS_POOL", "From-Env")
    monkeypatch.setenv("PVE_USER", "env@pve")
    settings = load_settings(env_file=None, proxmox={"vms_pool": "Given"})
    assert settings.proxmox.vms_pool == "Given"
    assert settings.proxmox.user == "env@pve"  # what is not given still comes from the env
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None, proxmox={"hostname": "no-port"})
    assert [name for name, _ in caught.value.problems] == ["PVE_HOSTNAME"]
    with pytest.raises(TypeError, match="proxmx"):
        load_settings(env_file=None, proxmx={})
