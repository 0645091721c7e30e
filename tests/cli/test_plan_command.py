"""`openvle plan EVENT`: the dry run by slug or id, as tables or JSON; exit 1 when the
event does not fit, 2 for an unknown event."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openvle_cli.main import main
from openvle_core.db.models import Event, EventTemplate, Node, Storage, Template
from openvle_core.db.session import create_engine, session_factory

GIB = 1 << 30


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    database = f"sqlite+aiosqlite:///{tmp_path / 'plan.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", database)
    assert main(["migrate"]) == 0
    return database


def seed(url: str, *, free_gib: int, participants: int) -> str:
    """Two nodes with `free_gib` free each, a 4 GiB template, an event; its id."""

    async def go() -> str:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session, session.begin():
                start = datetime.now(UTC) + timedelta(days=1)
                template = Template(
                    vmid=9000,
                    name="debian",
                    node="pve1",
                    cores=2,
                    memory_mb=4096,
                    storages="ceph",
                    disk_mb=8192,
                )
                event = Event(
                    slug="plancli",
                    name="Plan",
                    starts_at=start,
                    ends_at=start + timedelta(hours=2),
                    participants=participants,
                )
                session.add_all([template, event])
                await session.flush()
                session.add(EventTemplate(event_id=event.id, template_id=template.id, position=0))
                for name in ("pve1", "pve2"):
                    session.add(
                        Node(
                            name=name,
                            status="online",
                            cpu=0.1,
                            maxcpu=16,
                            mem=(64 - free_gib) * GIB,
                            maxmem=64 * GIB,
                        )
                    )
                    session.add(
                        Storage(
                            storage="ceph",
                            node=name,
                            shared=True,
                            status="available",
                            disk=0,
                            maxdisk=500 * GIB,
                        )
                    )
                return event.id
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_plan_that_fits_by_slug_as_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed(url, free_gib=32, participants=6)
    assert main(["plan", "plancli", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["fits"] is True
    assert plan["vms"] == 6
    assert sum(n["new_vms"] for n in plan["nodes"]) == 6


def test_a_plan_that_does_not_fit_exits_1_with_the_problem(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id = seed(url, free_gib=4, participants=6)
    assert main(["plan", event_id]) == 1
    out = capsys.readouterr().out
    assert "does not fit" in out
    assert "fit on no node" in out


def test_an_unknown_event_is_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "nosuch"]) == 2
    assert "not found" in capsys.readouterr().err
