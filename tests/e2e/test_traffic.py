"""Under real traffic: single-flight, bounded work, limits, store trouble, health and metrics."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.support.archive_server import ArchiveStub, Fault
from tests.support.blocking import BlockingFrame
from tests.support.frames import OWNER
from tests.support.imaging import decode
from tests.support.metrics import metric
from tests.support.s3 import dead_endpoint
from tests.support.waiting import until
from thumbservice.domain.errors import UnreadableFrame
from thumbservice.domain.spec import ThumbnailSpec
from thumbservice.entrypoints.app import CONTAINER


async def test_ten_identical_cold_requests_share_one_download_and_render(
    client: TestClient, archive: ArchiveStub
) -> None:
    held = asyncio.Event()
    archive.file_fault = Fault(hold=held)  # the first download stays open until all ten are in
    asking = [asyncio.create_task(client.get("/101/?width=150")) for _ in range(10)]
    # All ten are in once nine have joined the first one's flight (identical anonymous lookups
    # may share one archive call, so the lookups are no count of them).
    await until_metric(client, "thumbservice_single_flight_joins_total", 9)
    held.set()
    responses = await asyncio.gather(*asking)
    assert [r.status for r in responses] == [200] * 10
    urls = {(await r.json())["url"].split("?")[0] for r in responses}
    assert len(urls) == 1
    assert archive.downloads[101] == 1
    # Every request is checked; identical lookups in flight with the same Authorization (here:
    # none) share one call (adapters/archive/coalescing.py), so there are at most ten.
    lookups = [auth for p, auth in archive.lookups if p.startswith("/frames/101/")]
    assert 1 <= len(lookups) <= 10 and set(lookups) == {None}
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_renders_total", kind="bw") == 1
    assert metric(text, "thumbservice_single_flight_joins_total") == 9


async def until_metric(client: TestClient, name: str, value: float) -> None:
    async with asyncio.timeout(30):
        while metric(await (await client.get("/metrics")).text(), name) != value:
            await asyncio.sleep(0.01)


async def test_sharing_a_render_never_shares_permission(
    client: TestClient, archive: ArchiveStub
) -> None:
    archive.file_fault = Fault(stall=0.3)
    owner, stranger = await asyncio.gather(
        client.get("/102/?width=90", headers={"Authorization": OWNER}),
        client.get("/102/?width=90"),
    )
    assert owner.status == 200
    assert stranger.status == 404


async def test_full_downloads_answer_503_with_retry_after_at_once(
    make_client, archive: ArchiveStub
) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(max_downloads=1, retry_after=7)
    held = asyncio.Event()
    archive.file_fault = Fault(hold=held)
    first = asyncio.create_task(client.get("/101/?width=100"))
    await until(lambda: archive.downloads[101] == 1)  # admitted: its download is under way
    # Answered while the only download cannot finish: refused at once, not queued.
    refused = await client.get("/101/?width=101")
    assert not first.done()
    held.set()
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "7"
    assert "busy downloading" in (await refused.json())["message"]
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await first).status == 200


async def test_a_trickling_download_does_not_keep_an_idle_worker_from_rendering(
    make_client, archive: ArchiveStub
) -> None:  # type: ignore[no-untyped-def]
    # One worker and no queue: the stalled download used to take the only place there was.
    client = await make_client(render_workers=1, render_queue_depth=0)
    held = asyncio.Event()
    archive.file_fault = Fault(hold=held, times=1)
    first = asyncio.create_task(client.get("/101/?width=100"))
    await until(lambda: archive.downloads[101] == 1)  # its download is under way, held
    second = await client.get("/101/?width=101")
    assert second.status == 200, await second.text()
    assert not first.done()
    held.set()
    assert (await first).status == 200


async def test_health_answers_while_a_render_runs(
    make_client, archive: ArchiveStub, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(shared=False, render_workers=1)
    renderer = client.app[CONTAINER].renderer()
    renderer = await renderer if inspect.isawaitable(renderer) else renderer
    with BlockingFrame(tmp_path / "held.fits") as held:
        spec = ThumbnailSpec.from_query("1", {})
        busy = asyncio.ensure_future(renderer.render([held.path], spec, tmp_path))
        await held.opened_by_a_worker()  # the only worker is inside a render, until released
        work = asyncio.create_task(client.get("/101/?width=2000"))
        await until(lambda: archive.downloads[101] == 1)  # its render waits for that worker
        for _ in range(10):  # the loop never waits on a render
            assert (await client.get("/healthz")).status == 200
        assert not work.done() and not busy.done()
    with pytest.raises(UnreadableFrame):
        await busy
    assert (await work).status == 200


async def test_download_size_limit(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(max_download_bytes=10_000)
    response = await client.get("/101/")
    assert response.status == 422
    assert "10000 bytes" in (await response.json())["message"]


async def test_image_pixel_limit_from_the_header(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(shared=False, render_workers=1, max_image_pixels=100_000)
    response = await client.get("/101/")
    assert response.status == 422
    assert "800x600" in (await response.json())["message"]


async def test_thumbnail_size_limit(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(max_thumbnail_size=400)
    response = await client.get("/101/?width=401")
    assert response.status == 400
    assert "400" in (await response.json())["message"]


async def test_overall_deadline(make_client, archive: ArchiveStub) -> None:  # type: ignore[no-untyped-def]
    # The download is held open, within DOWNLOAD_TIMEOUT, which bounds the whole download.
    client = await make_client(request_deadline=0.5, download_timeout=30.0)
    held = asyncio.Event()
    archive.file_fault = Fault(hold=held)
    try:
        response = await client.get("/101/?width=55")
        # The deadline answered, not the download: it is under way and cannot have finished.
        assert archive.downloads[101] == 1 and not held.is_set()
        assert response.status == 504
        assert "deadline" in (await response.json())["message"]
    finally:
        held.set()
    # The abandoned render finishes and is kept for the next caller (who, on a busy machine,
    # may still meet the deadline while it runs, but never starts a second download).
    async with asyncio.timeout(60):
        again = await client.get("/101/?width=55")
        while again.status == 504:  # each try waits for the render, up to its own deadline
            again = await client.get("/101/?width=55")
    assert again.status == 200
    assert archive.downloads[101] == 1


async def test_store_down_image_still_answers_json_is_503(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(storage_url=dead_endpoint())
    image = await client.get("/101/?width=70&image=true")
    assert image.status == 200
    assert decode(await image.read()).size == (70, 53)
    json = await client.get("/101/?width=70")
    assert json.status == 503
    message = (await json.json())["message"]
    assert "store" in message.lower()
    assert_says_nothing_internal(message, client)
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_store_failures_total", operation="put") >= 1


async def test_readiness_reflects_a_dead_archive_and_store(make_client) -> None:  # type: ignore[no-untyped-def]
    healthy = await make_client()
    ready = await healthy.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ready"
    dead = await make_client(archive_api_url="http://127.0.0.1:9/", storage_url=dead_endpoint())
    response = await dead.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["archive"] != "ok"
    assert body["store"] != "ok"
    assert_says_nothing_internal(await response.text(), dead)
    assert (await dead.get("/healthz")).status == 200
    thumbnail = await dead.get("/101/")
    assert thumbnail.status == 502
    assert_says_nothing_internal(await thumbnail.text(), dead)


def assert_says_nothing_internal(text: str, client: TestClient) -> None:
    """Public answers say what failed in plain words: endpoints and buckets go to the log."""
    settings = client.app[CONTAINER].settings()
    for secret in ("http://", "https://", "127.0.0.1", settings.aws_bucket, str(settings.tmp_dir)):
        assert secret not in text, f"{secret!r} in {text!r}"


async def test_metrics_count_a_hit_and_a_miss(client: TestClient) -> None:
    await client.get("/101/?width=66")
    await client.get("/101/?width=66")
    await client.get("/101/?width=abc")
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_cache_lookups_total", result="miss") == 1
    assert metric(text, "thumbservice_cache_lookups_total", result="hit") == 1
    assert metric(text, "thumbservice_requests_total", route="/{frame}/", status="200") == 2
    assert metric(text, "thumbservice_requests_total", route="/{frame}/", status="400") == 1
    assert metric(text, "thumbservice_downloaded_bytes_total") > 100_000
    assert "thumbservice_request_duration_seconds_bucket" in text
    assert "thumbservice_render_duration_seconds_bucket" in text
    assert "thumbservice_renders_in_flight 0.0" in text
    assert "thumbservice_render_queue_depth 0.0" in text
