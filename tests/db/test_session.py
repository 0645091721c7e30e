"""Concurrent units of work that read, then write, all succeed on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from openvle_core.db.models import Vm
from openvle_core.db.session import engine_from_settings, session_factory, transaction
from openvle_core.settings import DatabaseSettings


async def test_concurrent_read_then_write_transactions(db_engine: AsyncEngine) -> None:
    factory = session_factory(db_engine)
    vmids = range(70_000, 70_008)
    async with transaction(factory) as session:
        session.add_all(Vm(name=f"c{v}", vmid=v, status="stopped") for v in vmids)

    async def flip(vmid: int) -> None:
        for _ in range(5):
            async with transaction(factory) as session:
                vm = await session.scalar(select(Vm).where(Vm.vmid == vmid))
                assert vm is not None
                await asyncio.sleep(0)  # let the others interleave between read and write
                vm.status = "running" if vm.status == "stopped" else "stopped"

    try:
        results = await asyncio.gather(*(flip(v) for v in vmids), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        async with factory() as session:
            stmt = select(Vm.status).where(Vm.vmid.in_(list(vmids)))
            assert set((await session.scalars(stmt)).all()) == {"running"}
    finally:
        async with transaction(factory) as session:
            await session.execute(delete(Vm).where(Vm.vmid.in_(list(vmids))))


async def test_engine_from_settings_uses_database_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'from-settings.sqlite3'}"
    engine = engine_from_settings(DatabaseSettings(url=SecretStr(url)))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert (tmp_path / "from-settings.sqlite3").exists()
    finally:
        await engine.dispose()
