"""Every shell command of the README and of the tutorial runs as written.

The blocks run in a reader's shell (bash, the test's virtualenv taken off PATH) from the
repository's root, one page's blocks after the other in one shell, `set -euo pipefail`.
A block that starts a long-running service is marked `until-ready`: it runs until it
prints its JSON line, then it is stopped. A block that cannot run here is marked `skip`
with its reason, and every such reason is listed below, so a new one is a reviewed
change of this file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from tests.docs.kit import ROOT, Block, reader_environment, shell_blocks
from tests.support.services import require_service

README = ROOT / "README.md"
TUTORIAL = ROOT / "docs" / "tutorial" / "first-lab.md"
SKIPPED = {
    ("README.md", "make test"): "the whole suite, this test included: CI runs it, see .ci/run",
    ("README.md", "make docs"): (
        "tests/docs builds the same site with mkdocs build --strict, and CI runs make docs"
    ),
}
READY_TIMEOUT = 300.0


def first_line(block: Block) -> str:
    return block.code.strip().splitlines()[0]


def test_every_block_is_run_or_skipped_for_a_reviewed_reason() -> None:
    blocks = shell_blocks(README) + shell_blocks(TUTORIAL)
    skipped = {(b.page, first_line(b)): b.reason for b in blocks if b.mode == "skip"}
    assert skipped == SKIPPED
    assert {b.mode for b in blocks} <= {"run", "skip", "until-ready"}
    assert sum(b.mode == "run" for b in shell_blocks(TUTORIAL)) >= 8


def run_script(blocks: list[Block], timeout: float) -> str:
    """Run the blocks in one bash from the repository root; the transcript, or fail."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        parts += [f"echo '### {block.page}:{block.line}'", block.code]
    proc = subprocess.Popen(
        ["bash", "-c", "\n".join(parts)],
        cwd=ROOT,
        env=reader_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # one process group: whatever a block left running is ended
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        with_group_stopped(proc)
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{out}"
    return out


def with_group_stopped(proc: subprocess.Popen[str]) -> None:
    """Stop what is left of the process group (a demo a failed script left running)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if proc.poll() is None:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_until_ready(block: Block) -> dict[str, str]:
    """Start the block, read stdout until its JSON line, stop its process group."""
    env = reader_environment(DEMO_ARGS="--port 0 --time-scale 0", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        ["bash", "-c", block.code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        for line in proc.stdout:
            if line.startswith("{"):
                info: dict[str, str] = json.loads(line)
                return info
            assert time.monotonic() < deadline, "no JSON line in time"
        raise AssertionError(f"{first_line(block)!r} ended ({proc.wait()}) without a JSON line")
    finally:
        with_group_stopped(proc)


@pytest.mark.slow
def test_readme_commands_run() -> None:
    blocks = shell_blocks(README)
    ready = [b for b in blocks if b.mode == "until-ready"]
    assert [first_line(b) for b in ready] == ["make demo"]
    info = run_until_ready(ready[0])
    assert set(info) >= {"api_url", "docs_url", "console_url", "admin_token", "env_file"}
    assert info["admin_token"].startswith("ovl_")
    runs = [b for b in blocks if b.mode == "run"]
    assert first_line(runs[0]) == "make tour"
    out = run_script(runs, timeout=360)
    assert "Usage: openvle" in out
    assert_tour(out)


def assert_tour(out: str) -> None:
    """`make tour` took the lab through every step and left nothing behind."""
    assert "422  slug: must be 4-8 characters of a-z, 0-9, _ and -" in out
    assert "tour  scheduled  3 participants" in out
    assert "event.deploy event tour: succeeded, 3/3 VMs" in out
    moving = {"cloning", "configuring", "starting"}
    assert any(line.split()[1:2] and line.split()[1] in moving for line in vm_lines(out, "tour"))
    listed = [line for line in out.splitlines() if "  running  10." in line and "  on pve" in line]
    assert len(listed) == 3
    assert "event.archive event tour: succeeded, 3/3 VMs" in out
    tail = out[out.index("8/8  The clean state after") :]
    for line in ("event tour: archived", "its VMs in the service: 0", "its VMs on Proxmox: 0"):
        assert f"      {line}" in tail


def vm_lines(out: str, slug: str) -> list[str]:
    """The per-VM lines of `openvle follow` (or the tour) for the event `slug`."""
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"{slug}-00")]


@pytest.mark.slow
def test_tutorial_commands_run() -> None:
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            require_service(tool, f"the tutorial uses {tool} (apt-get install {tool})")
    blocks = shell_blocks(TUTORIAL)
    assert {b.mode for b in blocks} == {"run"}
    out = run_script(blocks, timeout=360)
    slug_rule = '{"loc":["body","slug"],"msg":"must be 4-8 characters of a-z, 0-9, _ and -"}'
    assert f"\n422\n{slug_rule}\n" in out
    assert "  demo-admin  " in out  # openvle token list, pointed at the demo by its env file
    assert "lab1  scheduled  3 participants" in out
    assert "event.deploy event lab1: succeeded, 3/3 VMs" in out
    assert re.search(r"^event\.deploy event \S+ started$", out, re.MULTILINE)
    assert re.search(r"^event\.deploy event \S+ succeeded in ", out, re.MULTILINE)
    listed = [line for line in vm_lines(out, "lab1") if line.endswith("  on pve1")]
    assert len([line for line in listed if "  running  10." in line]) == 3
    assert "lab1-001-debian-12-template  stopped" in out
    assert "event.archive event lab1: succeeded, 3/3 VMs" in out
    assert sorted(line for line in vm_lines(out, "lab1") if line.endswith("deleted")) == [
        f"lab1-00{p}-debian-12-template  deleted" for p in (1, 2, 3)
    ]
    clean = out[out.index("\narchived\n0\n") :].splitlines()[1:]
    assert [line for line in clean if not line.startswith("###")] == [
        "archived",
        "0",
        "9000  debian-12-template",
        "9001  ubuntu-2404-template",
        "9002  kali-2025-template",
    ]
    assert clean[-1] == f"### {TUTORIAL.name}:{blocks[-1].line}"  # the stop printed nothing
