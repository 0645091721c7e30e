"""`openvle demo` as a subprocess for tests that drive it from outside (a browser, curl).

Started as `make demo` starts it (uv run), on a free port, with its data in a directory
of the test's; the JSON ready line is parsed and the process killed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

READY_TIMEOUT = 90.0
ROOT = Path(__file__).resolve().parents[2]


def demo_command() -> list[str]:
    """What `make demo` runs (`uv run --frozen openvle demo`), or the venv's script."""
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "run", "--frozen", "openvle", "demo"]
    return [str(Path(sys.executable).with_name("openvle")), "demo"]


def read_ready_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Skip anything before the JSON line (uv may print), return it parsed."""
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"demo exited early ({proc.wait()}): {stderr}")
        if line.startswith("{"):
            info: dict[str, Any] = json.loads(line)
            return info
    raise AssertionError("the demo printed no JSON line in time")


def console_url(info: dict[str, Any]) -> str:
    """The ready line's `console_url`, or the same built from `api_url` and the token."""
    if "console_url" in info:
        return str(info["console_url"])
    base = str(info["api_url"]).removesuffix("/api/v1")
    return f"{base}/console/#token={info['admin_token']}"


@contextlib.contextmanager
def running_demo(data_dir: Path, *options: str) -> Iterator[dict[str, Any]]:
    """Run the demo until the block ends; yields its ready line."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PYTHONUNBUFFERED": "1"}
    args = [*demo_command(), "--port", "0", "--data-dir", str(data_dir), *options]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield read_ready_line(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
