"""The HTTP half of the container smoke tests (standard library only, any python3).

    api_smoke.py ready-line            read `openvle demo`'s output on stdin, print its token
    api_smoke.py templates BASE TOKEN  /health/ready is 200, the demo templates are listed
    api_smoke.py event BASE TOKEN      a 2-VM event (1 participant x 2 templates) deployed

BASE is the API's root URL (http://127.0.0.1:PORT). Each step prints what it saw; a
failure exits 1 with the reason (the calling script then prints the container logs).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

DEMO_TEMPLATES = {"debian-12-template", "ubuntu-2404-template"}
DEPLOY_TIMEOUT = 300.0


class SmokeError(Exception):
    """A check that failed, with what was seen."""


def call(base: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw) if raw else None


def expect(base: str, token: str, status: int, method: str, path: str, body: Any = None) -> Any:
    """`call`, raising SmokeError unless the reply has `status`."""
    got, payload = call(base, token, method, path, body)
    if got != status:
        raise SmokeError(f"{method} {path}: {got} (expected {status}): {payload}")
    return payload


def ready_line() -> None:
    """Print the admin token of the first JSON line on stdin (`openvle demo`'s ready line)."""
    for line in sys.stdin:
        if line.startswith("{"):
            print(json.loads(line)["admin_token"])
            return
    raise SmokeError("no JSON ready line")


def templates(base: str, token: str) -> list[dict[str, Any]]:
    """/health/ready answers 200 and /api/v1/templates lists the simulator's templates."""
    ready = expect(base, token, 200, "GET", "/health/ready")
    items: list[dict[str, Any]] = expect(base, token, 200, "GET", "/api/v1/templates")["items"]
    names = {t["name"] for t in items}
    if not DEMO_TEMPLATES <= names:
        raise SmokeError(f"templates listed: {sorted(names)}, expected {sorted(DEMO_TEMPLATES)}")
    print(f"ready: {ready}; templates: {sorted(names)}")
    return items


def wait_operation(base: str, token: str, op_id: str) -> dict[str, Any]:
    """Poll the operation until it finishes or DEPLOY_TIMEOUT passes."""
    deadline = time.monotonic() + DEPLOY_TIMEOUT
    while time.monotonic() < deadline:
        op: dict[str, Any] = expect(base, token, 200, "GET", f"/api/v1/operations/{op_id}")
        if op["state"] in {"succeeded", "failed"}:
            return op
        time.sleep(1)
    raise SmokeError(f"operation {op_id} still running after {DEPLOY_TIMEOUT:.0f} s")


def event(base: str, token: str) -> None:
    """Create an event of 1 participant x 2 templates, deploy it, wait for 2 running VMs."""
    ids = [t["id"] for t in templates(base, token) if t["name"] in DEMO_TEMPLATES]
    now = datetime.now(UTC)
    body = {
        "slug": f"ci{int(time.time()) % 100000}",
        "name": "CI smoke test",
        "template_ids": ids,
        "participants": 1,
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
    }
    created = expect(base, token, 201, "POST", "/api/v1/events", body)
    op = expect(base, token, 202, "POST", f"/api/v1/events/{created['id']}/deploy")
    done = wait_operation(base, token, op["id"])
    if done["state"] != "succeeded":
        raise SmokeError(f"deploy {done['state']}: {done.get('error')}")
    vms = expect(base, token, 200, "GET", f"/api/v1/vms?event_id={created['id']}")["items"]
    seen = sorted((vm["name"], vm["status"], vm["vmid"], vm["node"]) for vm in vms)
    if len(vms) != 2 or any(vm["status"] != "running" for vm in vms):
        raise SmokeError(f"expected 2 running VMs, got {seen}")
    print(f"event {body['slug']} deployed: {seen}")


def main(argv: list[str]) -> int:
    """Run the step named in argv[1]; 0 when it passed, 1 with the reason otherwise."""
    steps = {"templates": templates, "event": event}
    try:
        if argv[1:] == ["ready-line"]:
            ready_line()
        elif len(argv) == 4 and argv[1] in steps:
            steps[argv[1]](argv[2], argv[3])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (SmokeError, OSError, KeyError, ValueError) as exc:
        print(f"api_smoke {argv[1]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
