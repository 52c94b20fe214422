"""Clients that hold connections open without speaking, or stop reading, against the real process.

The service runs as `python -m thumbservice` with a low limit on open files (as `ulimit -n`
would set), so a few dozen connections are enough to show what a thousand would do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.e2e.test_processes import environment
from tests.support.archive_server import ArchiveStub
from tests.support.metrics import metric
from tests.support.s3 import free_port
from tests.support.service import service_process
from tests.support.sockets import closed_by_server, silent_sockets

FILE_LIMIT = 100
"""The service's RLIMIT_NOFILE: it holds about 16 files idle, so MAX_CONNECTIONS is 18."""
SILENT = 120
PATIENCE = 30.0


async def test_silent_connections_under_a_low_file_limit_neither_starve_nor_stay(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    env = {**environment(archive, bucket, s3_endpoint, scratch), "HEADER_TIMEOUT": "3"}
    async with (
        service_process(env, tmp_path / "service.log", file_limit=FILE_LIMIT) as service,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PATIENCE)) as http,
    ):
        host, port = service.url.removeprefix("http://").split(":")
        async with silent_sockets(host, int(port), SILENT) as silent:
            # While every place is held by a connection still within its header time, the
            # cap answers a JSON 503 with Retry-After (never a failed accept or a hang); once
            # the silent ones are closed, the answer is a 200.
            await answered(http, f"{service.url}/healthz")
            response_json = await answered(http, f"{service.url}/101/?width=64")
            assert response_json["url"]
            for sock in silent:
                assert await closed_by_server(sock, PATIENCE) == b""
        async with http.get(f"{service.url}/metrics") as response:
            text = await response.text()
        closed = sum(
            metric(text, "thumbservice_connections_closed_total", reason=reason)
            for reason in ("header_timeout", "evicted")
        )
        assert closed == SILENT
    assert b"Too many open files" not in service.log.read_bytes()


async def test_metrics_on_a_port_of_their_own(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    metrics_port = free_port()
    env = {**environment(archive, bucket, s3_endpoint, scratch), "METRICS_PORT": str(metrics_port)}
    async with (
        service_process(env, tmp_path / "service.log") as service,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PATIENCE)) as http,
    ):
        async with http.get(f"{service.url}/101/?width=64") as response:
            assert response.status == 200
        async with http.get(f"{service.url}/metrics") as response:
            assert response.status == 404
        async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        assert metric(text, "thumbservice_renders_total", kind="bw") == 1


async def answered(http: aiohttp.ClientSession, url: str) -> dict:
    """The JSON of a 200 from `url`, after any 503s of a full connection cap."""
    async with asyncio.timeout(PATIENCE):
        while True:
            async with http.get(url) as response:
                body = await response.json()
                if response.status == 200:
                    return body
                assert response.status == 503, body
                assert response.headers["Retry-After"] and body["message"], body
            await asyncio.sleep(0.2)
