"""`make demo`'s command end to end: start it, drive it with the printed token, stop it.

The test creates an event of two participants on the Debian template, deploys it through
POST /events/{id}/deploy with the printed admin token, and waits until both VMs run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.demo import demo_command, read_ready_line, stop_group

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PYTHONUNBUFFERED": "1"}
    args = [*demo_command(), "--port", "0", "--time-scale", "0", "--data-dir", str(tmp_path)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
        start_new_session=True,
    )
    try:
        yield proc, read_ready_line(proc)
    finally:
        stop_group(proc)


def wait_operation(client: httpx.Client, op_id: str) -> dict[str, Any]:
    """Poll the operation until it finishes (bounded by the test timeout)."""
    while True:
        op: dict[str, Any] = client.get(f"/operations/{op_id}").json()
        if op["state"] in {"succeeded", "failed"}:
            return op
        time.sleep(0.1)


def test_demo_serves_clones_and_stops_cleanly(
    demo: tuple[subprocess.Popen[str], dict[str, Any]], tmp_path: Path
) -> None:
    proc, info = demo
    assert list(info) == [
        "api_url",
        "docs_url",
        "console_url",
        "admin_token",
        "pve_url",
        "pve_token",
        "pve_ca_file",
        "data_dir",
        "env_file",
    ]
    base = info["api_url"].removesuffix("/api/v1")
    assert info["console_url"] == f"{base}/console/#token={info['admin_token']}"
    assert (info["data_dir"], info["env_file"]) == (str(tmp_path), str(tmp_path / "openvle.env"))
    headers = {"Authorization": f"Bearer {info['admin_token']}"}
    assert httpx.get(info["docs_url"]).status_code == 200
    with httpx.Client(base_url=info["api_url"], headers=headers, timeout=10) as client:
        templates = client.get("/templates").json()["items"]
        assert {t["name"] for t in templates} >= {"debian-12-template", "ubuntu-2404-template"}
        debian = next(t for t in templates if t["name"] == "debian-12-template")
        now = datetime.now(UTC)
        event = client.post(
            "/events",
            json={
                "slug": "demo1",
                "name": "Demo",
                "template_ids": [debian["id"]],
                "participants": 2,
                "starts_at": (now + timedelta(days=1)).isoformat(),
                "ends_at": (now + timedelta(days=2)).isoformat(),
            },
        )
        assert event.status_code == 201, event.text
        deploy = client.post(f"/events/{event.json()['id']}/deploy")
        assert deploy.status_code == 202, deploy.text
        finished = wait_operation(client, deploy.json()["id"])
        assert finished["state"] == "succeeded", finished
        assert (finished["progress"]["done"], finished["progress"]["total"]) == (2, 2)
        vms = client.get("/vms", params={"event_id": event.json()["id"]}).json()["items"]
        assert sorted(vm["name"] for vm in vms) == [
            "demo1-001-debian-12-template",
            "demo1-002-debian-12-template",
        ]
        assert [vm["status"] for vm in vms] == ["running", "running"]
        assert all(vm["vmid"] and vm["node"] and vm["ipv4"] for vm in vms)
        assert client.get(f"/events/{event.json()['id']}").json()["status"] == "deployed"
    followed = with_demo_env(info, f"openvle follow {deploy.json()['id']}")
    assert followed.returncode == 0, followed.stderr
    assert "  demo1-002-debian-12-template  running  10." in followed.stdout
    assert f"operation {deploy.json()['id']} succeeded" in followed.stdout
    listed = with_demo_env(info, "openvle token list")
    assert listed.stdout.splitlines()[1].split()[1:2] == ["demo-admin"]
    doctor = with_demo_env(info, "openvle doctor --json")
    assert doctor.returncode == 0, doctor.stdout
    assert {c["name"]: c["status"] for c in json.loads(doctor.stdout)["checks"]}["pool"] == "OK"
    proc.send_signal(signal.SIGTERM)  # uv forwards it to the demo
    assert proc.wait(timeout=30) == 0
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr
    assert f"event.deploy event {event.json()['id']} started" in stderr  # the progress log
    assert f"event.deploy event {event.json()['id']} succeeded in " in stderr
    assert (tmp_path / "openvle.sqlite3").exists()


def with_demo_env(info: dict[str, Any], command: str) -> subprocess.CompletedProcess[str]:
    """`command` in a shell that sourced the demo's env file, as the banner says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PVE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    script = f". {info['env_file']} && {command}"
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=info["data_dir"],
    )


def test_demo_reports_a_taken_port_in_one_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = str(Path(sys.executable).with_name("openvle"))
        run = subprocess.run(
            [script, "demo", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert run.returncode == 1
    assert run.stderr.strip().startswith(f"cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    script = str(Path(sys.executable).with_name("openvle"))
    args = [script, "demo", "--port", "0", "--time-scale", "0"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        info = read_ready_line(proc)
        assert httpx.get(info["api_url"].removesuffix("/api/v1") + "/health/live").is_success
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    assert list(tmp_path.iterdir()) == []  # the temporary data directory lives elsewhere
