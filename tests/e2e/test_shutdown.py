"""SIGTERM with renders and uploads under way: stop accepting, finish, drain, then close.

moto behind a gate that holds the uploads of thumbnails already answered (`image=true`), so
they are certainly still on their way when the process is told to stop; more renders are
in flight, their downloads held open until the service has begun to stop. Whatever was
answered must be in the store, and no lease may be left behind.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from tests.e2e.test_processes import environment
from tests.support.archive_server import ArchiveStub, Fault
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.support.s3_gate import upload_gate
from tests.support.service import service_process
from tests.support.waiting import until
from thumbservice.adapters.storage.s3 import open_s3_client

ANSWERED_IMAGES = 3
RENDERS_IN_FLIGHT = 2
PATIENCE = 60.0


async def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    async with open_s3_client(
        region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=endpoint
    ) as client:
        listing = await client.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


async def test_sigterm_with_uploads_and_renders_in_flight_loses_nothing(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    async with upload_gate(s3_endpoint, hold=ANSWERED_IMAGES) as gate:
        env = {
            **environment(archive, bucket, gate.endpoint, scratch),
            "LOG_LEVEL": "INFO",
            "RENDER_WORKERS": "2",
            "SHUTDOWN_TIMEOUT": "20",
            # Every size a render from the file (a kept picture would draw them with no
            # download, and the renders in flight are what this test stops).
            "FRAME_CACHE_BYTES": "0",
        }
        async with service_process(env, log) as service, aiohttp.ClientSession() as http:
            for i in range(ANSWERED_IMAGES):
                async with http.get(f"{service.url}/101/?width={60 + i}&image=true") as answer:
                    assert answer.status == 200
                    assert await answer.read()
            await until(
                lambda: gate.held == ANSWERED_IMAGES, PATIENCE, what="the answered uploads held"
            )

            held = asyncio.Event()  # the renders' downloads stay open until the service stops
            archive.file_fault = Fault(hold=held)
            in_flight = [
                asyncio.ensure_future(http.get(f"{service.url}/101/?width={90 + i}"))
                for i in range(RENDERS_IN_FLIGHT)
            ]
            await until(
                lambda: archive.downloads[101] == ANSWERED_IMAGES + RENDERS_IN_FLIGHT,
                PATIENCE,
                what="the renders in flight downloading",
            )
            service.process.send_signal(signal.SIGTERM)
            await until(
                lambda: b'"stopping"' in log.read_bytes(), PATIENCE, what="the service stopping"
            )
            held.set()  # the renders were in flight, their downloads unfinished, as it stopped
            # The uploads wait at the gate until the service drains them, or gives up on them.
            await until(
                lambda: gate.dropped > 0 or b"work_draining" in log.read_bytes(),
                PATIENCE,
                what="the service draining",
            )
            gate.open()
            answers = [await response for response in in_flight]
            urls = [(await a.json())["url"] for a in answers if a.status == 200]
            assert await asyncio.wait_for(service.process.wait(), PATIENCE) == 0
        assert gate.dropped == 0, "an upload was abandoned"

    keys = await bucket_keys(s3_endpoint, bucket)
    assert [k for k in keys if k.startswith("leases/")] == [], "a lease was left behind"
    thumbnails = {k for k in keys if not k.startswith("leases/")}
    assert len(urls) == RENDERS_IN_FLIGHT, [a.status for a in answers]
    assert len(thumbnails) == ANSWERED_IMAGES + RENDERS_IN_FLIGHT
    for url in urls:
        assert url.split("?")[0].rsplit("/", 1)[1] in thumbnails
    assert b"uploads_unfinished_at_shutdown" not in log.read_bytes()
