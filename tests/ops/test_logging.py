"""Structured logs: secrets never get through, and an operation's lines carry its id
and, once known, its vmid (checked on a real sync and clone against the simulator)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from openvle_cli.demo import DemoOptions, demo_settings
from openvle_core.db.migrate import upgrade_to_head
from openvle_core.db.models import Template
from openvle_core.db.session import transaction
from openvle_core.handlers import run_operation
from openvle_core.logging import (
    configure_logging,
    current_context,
    log_context,
    redact,
    settings_secrets,
    setup_logging,
)
from openvle_core.operations.repository import OperationRepository
from openvle_core.runtime import open_runtime
from openvle_core.sync.service import request_sync
from openvle_core.vms.service import request_clone
from openvle_pvesim import run_simulator

log = logging.getLogger("openvle.test")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", secrets=["hunter22-secret"], stream=stream)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: PVEAPIToken=openvle@pve!ci=9d5b2f4e-6c1a", "9d5b2f4e-6c1a"),
        ("header Bearer ovl_abcDEF123-xyz sent", "ovl_abcDEF123-xyz"),
        ("mysql+asyncmy://openvle:s3cretpw@db:3306/openvle", "s3cretpw"),
        ("cipassword=topsecret1 ciuser=student", "topsecret1"),
        ("the configured value hunter22-secret appears", "hunter22-secret"),
    ],
)
def test_secrets_are_redacted(text: str, leak: str, json_lines: io.StringIO) -> None:
    assert leak not in redact(text, ["hunter22-secret"])
    log.warning("seen: %s", text)
    try:
        raise RuntimeError(text)
    except RuntimeError:
        log.exception("failed")
    output = json_lines.getvalue()
    assert leak not in output
    assert "***" in output
    assert [e["message"] for e in parsed(json_lines)][1] == "failed"


def test_settings_secrets_include_url_passwords() -> None:
    from openvle_core.settings import MongoSettings

    mongo = MongoSettings(_env_file=None, url=SecretStr("mongodb://u:mongo-pw-1@h:27017/"))
    from openvle_core.settings import (
        ApiSettings,
        CloudInitSettings,
        DatabaseSettings,
        GeneralSettings,
        LogSettings,
        ProxmoxSettings,
        RedisSettings,
        Settings,
        VmDefaults,
        WorkerSettings,
    )

    settings = Settings(
        proxmox=ProxmoxSettings(_env_file=None, token_value=SecretStr("pve-token-secret")),
        vms=VmDefaults(_env_file=None),
        cloudinit=CloudInitSettings(_env_file=None),
        database=DatabaseSettings(_env_file=None),
        mongodb=mongo,
        redis=RedisSettings(_env_file=None),
        worker=WorkerSettings(_env_file=None),
        api=ApiSettings(_env_file=None),
        log=LogSettings(_env_file=None, format="json"),
        general=GeneralSettings(_env_file=None),
    )
    found = settings_secrets(settings)
    assert {"pve-token-secret", "mongo-pw-1"} <= set(found)
    stream = io.StringIO()
    handler = setup_logging(settings, stream=stream)
    try:
        log.warning("token %s and url %s", "pve-token-secret", "mongodb://x:mongo-pw-1@h/")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "pve-token-secret" not in stream.getvalue()
    assert "mongo-pw-1" not in stream.getvalue()


def test_context_fields_nest_and_reset(json_lines: io.StringIO) -> None:
    with log_context(operation_id="op-1"):
        with log_context(vmid=101):
            log.info("inner")
        log.info("outer")
    log.info("after")
    inner, outer, after = parsed(json_lines)
    assert (inner["operation_id"], inner["vmid"]) == ("op-1", 101)
    assert outer["operation_id"] == "op-1"
    assert "vmid" not in outer
    assert "operation_id" not in after
    assert current_context() == {}


async def test_operation_lines_carry_operation_id_and_vmid(
    tmp_path: Path, json_lines: io.StringIO
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await upgrade_to_head(url)
    logging.getLogger("httpx").setLevel(logging.INFO)  # one line per Proxmox request
    try:
        async with run_simulator(tls=True) as sim:
            settings = demo_settings(sim, url, DemoOptions(time_scale=0))
            async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
                async with transaction(runtime.sessions) as session:
                    sync = await request_sync(session)
                await runtime.run(sync.id)
                async with transaction(runtime.sessions) as session:
                    query = select(Template).where(Template.vmid == 9000)
                    template = (await session.scalars(query)).one()
                    clone = await request_clone(
                        session, settings, template_id=template.id, name="log-test"
                    )
                await runtime.run(clone.id)
                async with runtime.sessions() as session:
                    done = await OperationRepository(session).require(clone.id)
    finally:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    assert done.state == "succeeded", done.error_message
    entries = parsed(json_lines)
    sync_lines = [e for e in entries if e.get("operation_id") == sync.id]
    assert any(e["logger"].startswith("openvle_core.sync") for e in sync_lines)
    assert all(e.get("kind") == "sync" for e in sync_lines if e["logger"] != "httpx")
    clone_lines = [e for e in entries if e.get("operation_id") == clone.id]
    vmid = (done.result or {}).get("vmid")
    with_vmid = [e for e in clone_lines if "vmid" in e]
    assert vmid is not None
    assert with_vmid
    assert {e["vmid"] for e in with_vmid} == {vmid}
    assert any(f"/qemu/{vmid}/" in e["message"] for e in with_vmid)
    assert sim.tokens["openvle@pve!ci"] not in json_lines.getvalue()
