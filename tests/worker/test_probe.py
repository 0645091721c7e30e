"""The worker's probe app in process: readiness fails (503, the failing check named)
when the database does not answer; /metrics follows the API's METRICS_TOKEN rule; the
port stays closed at WORKER_METRICS_PORT=0."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from openvle_core.handlers import run_operation
from openvle_core.runtime import open_runtime
from openvle_pvesim import run_simulator
from openvle_worker.probe import probe_app, serve_probes
from tests.vms.kit import make_settings, sqlite_url


async def test_ready_is_503_without_a_database_and_metrics_need_the_token(
    tmp_path: Path,
) -> None:
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        base = make_settings(sim, sqlite_url(tmp_path / "missing-directory"))
        settings = base.model_copy(
            update={"api": base.api.model_copy(update={"metrics_token": SecretStr("t0ken")})}
        )
        async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
            transport = httpx.ASGITransport(app=probe_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
                ready = await client.get("/health/ready")
                assert ready.status_code == 503
                body = ready.json()
                assert body["ready"] is False
                assert body["checks"]["database"]["ok"] is False
                assert body["checks"]["database"]["detail"].startswith("database unavailable")
                assert body["checks"]["queue"] == {"ok": True, "detail": "in-process"}
                assert (await client.get("/health/live")).json() == {"status": "ok"}
                refused = await client.get("/metrics", headers={"Authorization": "t0ken"})
                assert refused.status_code == 401
                assert refused.headers["content-type"] == "application/problem+json"
                scrape = await client.get("/metrics", headers={"Authorization": "Bearer t0ken"})
                assert scrape.status_code == 200
                assert "# TYPE openvle_sync_runs_total counter" in scrape.text
            async with serve_probes(runtime) as port:  # WORKER_METRICS_PORT=0: off
                assert port is None


async def test_ready_names_a_poll_loop_that_cannot_reach_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an arq worker in the process, readiness also follows its poll loop (false from
    the first failed poll of Redis until one gets through)."""
    import weakref

    from openvle_worker import resilience

    class Polling:
        ready = False
        polled = False

    worker = Polling()
    async with run_simulator(version="9.1", time_scale=0.01) as sim:
        settings = make_settings(sim, sqlite_url(tmp_path / "db.sqlite3"))
        async with open_runtime(settings, runner=run_operation, in_process=True) as runtime:
            transport = httpx.ASGITransport(app=probe_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
                assert "polling" not in (await client.get("/health/ready")).json()["checks"]
                monkeypatch.setattr(resilience, "_current", weakref.ref(worker))
                starting = await client.get("/health/ready")
                assert starting.status_code == 503
                assert starting.json()["checks"]["polling"] == {
                    "ok": False,
                    "detail": "the worker has not polled Redis yet (starting, or Redis is away)",
                }
                worker.polled = True  # it had polled; now a poll fails
                down = await client.get("/health/ready")
                assert down.status_code == 503
                assert down.json()["checks"]["polling"] == {
                    "ok": False,
                    "detail": "the worker's poll of Redis fails; it retries",
                }
                worker.ready = True
                up = (await client.get("/health/ready")).json()["checks"]["polling"]
                assert up == {"ok": True, "detail": None}
