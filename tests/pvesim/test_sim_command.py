"""The `python -m openvle_pvesim` command in a subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from openvle_pvesim import run_simulator
from openvle_pvesim.seeds import ADMIN_TOKEN


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "openvle_pvesim", "--port", "0", "--time-scale", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail(f"no start-up line; stderr: {process.communicate()[1]}")
    return process, json.loads(line)


@pytest.mark.parametrize("version", ["9.1", "8.4"])
def test_cli_prints_one_json_line_serves_and_exits_on_sigterm(version: str) -> None:
    process, info = _start("--pve-version", version, "--tls", "--token", "ops@pve!tk=s3cret")
    try:
        assert info["version"] == version
        assert isinstance(info["tokens"], dict)
        assert info["tokens"]["ops@pve!tk"] == "s3cret"
        url, ca_file = str(info["url"]), str(info["ca_file"])
        assert url.startswith("https://127.0.0.1:")
        assert url.endswith("/api2/json")
        headers = {"Authorization": "PVEAPIToken=ops@pve!tk=s3cret"}
        response = httpx.get(
            url + "/version",
            headers=headers,
            verify=ssl.create_default_context(cafile=ca_file),
            timeout=10,
        )
        assert response.status_code == 200
        assert response.json()["data"]["release"] == version
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=20)
    assert returncode == 0


def test_cli_plain_http_and_sigint() -> None:
    process, info = _start()
    try:
        assert info["ca_file"] is None
        assert str(info["url"]).startswith("http://")
        assert httpx.get(str(info["url"]) + "/version", timeout=10).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=20)
    assert returncode == 0


def _refused(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with `args`, expecting it to refuse them (exit code 2)."""
    return subprocess.run(
        [sys.executable, "-m", "openvle_pvesim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_rejects_a_malformed_token() -> None:
    result = _refused("--token", "no-secret")
    assert result.returncode == 2
    assert "USER@REALM!ID=SECRET" in result.stderr


def test_cli_seed_file_vms_and_version(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"nodes": [{"name": "lab1"}], "pools": [{"poolid": "OpenVLE-VMs"}]}))
    process, info = _start("--seed", str(seed), "--vms", "5", "--pve-version", "8.4")
    try:
        tokens = info["tokens"]
        assert isinstance(tokens, dict)
        headers = {"Authorization": f"PVEAPIToken=root@pam!admin={tokens['root@pam!admin']}"}
        nodes = httpx.get(str(info["url"]) + "/nodes", headers=headers, timeout=10).json()
        vms = httpx.get(
            str(info["url"]) + "/cluster/resources", params={"type": "vm"}, headers=headers
        ).json()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert [node["node"] for node in nodes["data"]] == ["lab1"]
    assert len(vms["data"]) == 5


def test_cli_rejects_a_stats_interval_that_is_not_positive() -> None:
    result = _refused("--stats-interval", "0")
    assert result.returncode == 2
    assert "--stats-interval: must be a number of seconds above 0" in result.stderr


async def test_stats_interval_sets_the_stats_round_in_real_seconds() -> None:
    """With time scale 1 a round would come every 10 s; `stats_interval=0.1` makes it
    every 0.1 s, whatever the time scale, and /cluster/resources moves that soon."""
    async with run_simulator(time_scale=1.0, stats_interval=0.1) as sim:
        vm = sim.cluster.vms[9000]
        vm.config["name"] = "renamed-behind-the-stats"
        headers = {"Authorization": f"PVEAPIToken={ADMIN_TOKEN}={sim.tokens[ADMIN_TOKEN]}"}
        verify = ssl.create_default_context(cafile=str(sim.ca_file))
        async with httpx.AsyncClient(base_url=sim.url, headers=headers, verify=verify) as http:
            for _ in range(100):  # at most 5 s
                resources = (await http.get("/cluster/resources")).json()["data"]
                names = {r.get("vmid"): r.get("name") for r in resources}
                if names[9000] == "renamed-behind-the-stats":
                    break
                await asyncio.sleep(0.05)
        assert names[9000] == "renamed-behind-the-stats"
