"""Readiness tells the truth about the render workers: not ready while they cannot run a job,
ready again, by itself, once they can."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support import workers
from thumbservice.adapters.rendering import worker as render_worker


async def readiness(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def until_readiness(client: TestClient, status: int, patience: float = 90.0) -> dict:
    """Ask /readyz until it answers `status` (each answer is fresh: no readiness cache)."""
    async with asyncio.timeout(patience):
        while True:
            answer, body = await readiness(client)
            if answer == status:
                return body
            await asyncio.sleep(0.05)


async def test_not_ready_while_the_workers_cannot_run_a_job_then_ready_again(
    make_client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(render_worker, "init_worker", workers.exit_as_it_starts)
    client = await make_client(shared=False, render_workers=1, readiness_cache_seconds=0)

    body = await until_readiness(client, 503)
    assert body["status"] == "not ready"
    assert body["archive"] == "ok" and body["store"] == "ok"
    assert body["renderer"] == "The render workers stop as they start; see the log"
    thumbnail = await client.get("/101/?width=80")
    assert thumbnail.status == 503
    assert (await readiness(client))[0] == 503, "still not ready: nothing has changed"

    monkeypatch.undo()  # the workers can start again (a fixed node, a freed process slot)
    body = await until_readiness(client, 200)
    assert body == {
        "status": "ready",
        "archive": "ok",
        "store": "ok",
        "renderer": "ok",
        "scratch": "ok",
    }
    thumbnail = await client.get("/101/?width=80")
    assert thumbnail.status == 200
