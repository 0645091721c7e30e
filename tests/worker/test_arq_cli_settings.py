"""`arq openvle_worker.worker.WorkerSettings`: importing the module reads no settings; arq
building the worker loads them then and honours WORKER_MAX_JOBS and REDIS_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from arq.worker import get_kwargs

from openvle_core.settings import ConfigError

OUR_PREFIXES = ("PVE_", "DATABASE_", "MONGODB_", "REDIS_", "WORKER_", "API_", "LOG_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variables of ours and no .env: each test sets what it needs."""
    for name in list(os.environ):
        if name.startswith(OUR_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def arq_kwargs() -> dict[str, Any]:
    """The Worker arguments arq's CLI builds from `WorkerSettings` (arq types them oddly)."""
    from openvle_worker.worker import WorkerSettings

    return cast("dict[str, Any]", get_kwargs(WorkerSettings))


def test_importing_the_worker_reads_no_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_PREFIXES)}
    env["WORKER_MAX_JOBS"] = "0"  # invalid: loading settings at import would raise
    code = "import openvle_worker.worker as w; print(len(w.WorkerSettings.functions))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "1"), out.stderr


def test_arq_start_up_honours_worker_max_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")
    monkeypatch.setenv("WORKER_MAX_JOBS", "3")
    kwargs = arq_kwargs()  # what arq's CLI passes to Worker(...)
    assert kwargs["max_jobs"] == 3
    assert kwargs["redis_settings"].database == 5
    assert sorted(job.name for job in kwargs["cron_jobs"]) == [
        "events_tick",
        "recover",
        "sync_tick",
    ]
    assert kwargs["ctx"]["settings"].worker.max_jobs == 3
    monkeypatch.setenv("WORKER_MAX_JOBS", "7")  # read at each start-up, not cached at import
    assert arq_kwargs()["max_jobs"] == 7


def test_arq_start_up_without_redis_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        arq_kwargs()
