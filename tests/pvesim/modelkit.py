"""Helpers for the model tests: waiting for tasks and reading their logs over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


def node_of(upid: str) -> str:
    return upid.split(":")[1]


async def task_status(client: httpx.AsyncClient, upid: str) -> dict[str, Any]:
    response = await client.get(f"/nodes/{node_of(upid)}/tasks/{upid}/status")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def wait_task(client: httpx.AsyncClient, upid: str, polls: int = 2000) -> dict[str, Any]:
    """Poll the task status until it is stopped (bounded, no wall-clock assertions)."""
    for _ in range(polls):
        status = await task_status(client, upid)
        if status["status"] == "stopped":
            return status
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {upid} did not finish")


async def task_log(client: httpx.AsyncClient, upid: str) -> list[str]:
    response = await client.get(f"/nodes/{node_of(upid)}/tasks/{upid}/log", params={"limit": 500})
    assert response.status_code == 200, response.text
    return [line["t"] for line in response.json()["data"]]


async def ok(response: httpx.Response) -> Any:
    """The data of a 200 response (fails with the body otherwise)."""
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    return response.json()["data"]


async def run(client: httpx.AsyncClient, response: httpx.Response) -> dict[str, Any]:
    """A UPID response: wait for the task and return its final status."""
    return await wait_task(client, await ok(response))


def error(response: httpx.Response, status: int = 500) -> str:
    """The message of an error response, checking the status and the reason phrase."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    message: str = response.json()["message"]
    assert response.reason_phrase == message.split("\n")[0]
    return message.rstrip("\n")
