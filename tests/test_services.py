"""The per-run test services answer and are ours alone."""

from __future__ import annotations

from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy import text

from openvle_core.db.session import create_engine


async def test_mariadb_database_is_fresh_and_ours(mariadb_url: str) -> None:
    engine = create_engine(mariadb_url)
    try:
        async with engine.connect() as conn:
            name = await conn.scalar(text("SELECT DATABASE()"))
            tables = (await conn.execute(text("SHOW TABLES"))).all()
    finally:
        await engine.dispose()
    assert str(name).startswith("openvle_run_")
    assert tables == []


async def test_redis_database_is_claimed_for_this_run(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        assert await client.exists("openvle:test:claim") == 1
        await client.set("openvle:test:probe", "1", ex=60)
        assert await client.get("openvle:test:probe") == b"1"
    finally:
        await client.delete("openvle:test:probe")
        await client.aclose()


async def test_mongodb_wire_server_answers(mongodb_url: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url)
    try:
        assert (await client.admin.command("ping"))["ok"] == 1
        await client["probe"]["c"].insert_one({"_id": "x", "v": 1})
        assert await client["probe"]["c"].find_one({"_id": "x"}) == {"_id": "x", "v": 1}
    finally:
        await client.close()
