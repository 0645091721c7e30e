"""Clients not written here drive a whole VM lifecycle against the simulator: clone,
start, snapshot, disk add, migrate, stop and delete, with no 501 and no error.

- proxmoxer (a dev dependency);
- the npm `proxmox-api` client, installed by `.ci/thirdparty-clients` into a cache
  directory outside the repository (`OPENVLE_NPM_CLIENTS`, default
  `~/.cache/openvle-ci/npm`). Without it the test skips, and fails in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.tools import Tasks

from openvle_pvesim import Simulator, start_in_thread
from tests.support.services import require_service

ADMIN = "root@pam!admin"
SCRIPT = Path(__file__).parent / "clients" / "lifecycle.cjs"
NPM_DIR = Path(os.environ.get("OPENVLE_NPM_CLIENTS", Path.home() / ".cache" / "openvle-ci" / "npm"))


def running(version: str, tls: bool) -> Iterator[Simulator]:
    with start_in_thread(version=version, tls=tls, check_responses=True) as sim:
        yield sim
        assert sim.violations == []


@pytest.fixture(params=["9.1", "8.4"])
def https_lab(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """proxmoxer speaks HTTPS only."""
    yield from running(request.param, tls=True)


@pytest.fixture(params=["9.1", "8.4"])
def http_lab(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    yield from running(request.param, tls=False)


def refusals(seen: list[str]) -> Any:
    """A requests hook that records every 4xx/5xx answer (a 501 included)."""

    def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        if response.status_code >= 400:
            seen.append(f"{response.status_code} {response.request.method} {response.url}")

    return hook


def test_proxmoxer_lifecycle(https_lab: Simulator) -> None:
    lab = https_lab
    host, port = lab.hostname.rsplit(":", 1)
    api = ProxmoxAPI(
        host, port=int(port), user="root@pam", token_name="admin",
        token_value=lab.tokens[ADMIN], verify_ssl=str(lab.ca_file),
    )  # fmt: skip
    seen: list[str] = []
    api._store["session"].hooks["response"].append(refusals(seen))

    def done(upid: str) -> None:
        status = Tasks.blocking_status(api, upid, timeout=30, polling_interval=0.01)
        assert status["exitstatus"] == "OK", status

    newid = int(api.cluster.nextid.get())
    done(api.nodes("pve1").qemu(9000).clone.post(newid=newid, name="pxr-lab", full=1))
    vm = api.nodes("pve1").qemu(newid)
    done(vm.status.start.post())
    done(vm.snapshot.post(snapname="fresh"))
    done(vm.config.post(scsi1="ceph:1"))
    assert vm.config.get()["scsi1"].endswith(",size=1G")
    done(vm.migrate.post(target="pve2", online=1))
    vm = api.nodes("pve2").qemu(newid)
    done(vm.status.stop.post())
    assert [s["name"] for s in vm.snapshot.get()] == ["fresh", "current"]
    done(vm.delete(purge=1))
    assert newid not in {r["vmid"] for r in api.cluster.resources.get(type="vm")}
    assert seen == []


def test_npm_proxmox_api_lifecycle(http_lab: Simulator) -> None:
    lab = http_lab
    node = shutil.which("node")
    if node is None or not (NPM_DIR / "node_modules" / "proxmox-api").is_dir():
        require_service("proxmox-api", f"node or {NPM_DIR}/node_modules/proxmox-api missing")
    host, port = lab.hostname.rsplit(":", 1)
    env = {
        **os.environ,
        "NODE_PATH": str(NPM_DIR / "node_modules"),
        "PVE_HOST": host,
        "PVE_PORT": port,
        "PVE_TOKEN": ADMIN,
        "PVE_SECRET": lab.tokens[ADMIN],
    }
    result = subprocess.run(
        [str(node), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == [
        "qmclone", "qmstart", "qmsnapshot", "qmconfig", "qmigrate", "qmstop", "qmdestroy"
    ]  # fmt: skip
    assert report["snapshots"] == ["fresh", "current"]
