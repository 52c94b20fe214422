"""The service against an archive that breaks HTTP, lies and stalls: no caller ever gets a frame
they may not see, and a bad answer is a clear 502 or 504, never a 500 or a hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from tests.e2e.conftest import AppFactory
from tests.support.frames import PRIVATE_PROPOSAL, FrameSet
from tests.support.hostile_archive import (
    HostileArchive as Hostile,
)
from tests.support.hostile_archive import (
    Raw,
    Record,
    Smuggle,
    Stall,
    running_hostile_archive,
)

PUBLIC = "LCOEPO2018B-002"


@pytest.fixture
async def hostile(test_frames: FrameSet) -> AsyncIterator[Hostile]:
    async with running_hostile_archive() as archive:
        for name in ("public", "private", "red", "visual", "blue"):
            record = test_frames.records[name]
            archive.add_frame(
                record, test_frames.paths[name].read_bytes(), private=name == "private"
            )
        yield archive


@pytest.fixture
async def client(make_client: AppFactory, hostile: Hostile) -> TestClient:
    return await make_client(archive_api_url=hostile.root, archive_timeout=10.0)


async def test_an_extra_response_after_a_download_never_reaches_another_caller(
    client: TestClient, hostile: Hostile
) -> None:
    # The file server answers the download of a public frame, then leaves the private frame's
    # record on the connection.
    hostile.on("/files/101/", Smuggle(102), times=1)
    first = await client.get("/101/", params={"width": "64"})
    assert first.status == 200
    assert (await first.json())["propid"] == PUBLIC
    assert hostile.smuggled == 1

    # The next anonymous callers get their own public frames; nobody waits for the deadline.
    for frame_id in (201, 202, 101):
        response = await client.get(f"/{frame_id}/", params={"width": "64"})
        body = await response.json()
        assert (response.status, body.get("propid")) == (200, PUBLIC), body
    assert not [seen for seen in hostile.seen if seen.path.startswith("/files/102/")]


async def test_another_frames_record_is_a_502_in_plain_words(
    client: TestClient, hostile: Hostile
) -> None:
    hostile.on("/frames/201/", Record(102))
    response = await client.get("/201/", params={"width": "64"})
    body = await response.json()
    assert response.status == 502
    assert body["message"].startswith("The archive answered something unreadable")
    assert hostile.root not in body["message"] and "102" not in body["message"]
    assert PRIVATE_PROPOSAL not in await response.text()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b'{"id": 101, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="nested"),
        pytest.param({"url": "http://[::1"}, id="url-broken-ipv6"),
        pytest.param({"url": "http://127.0.0.1:99999/f.fits.fz"}, id="url-port-99999"),
        pytest.param({"id": 2**64}, id="id-out-of-range"),
        pytest.param({"filename": ["a.fits"]}, id="wrong-type"),
        pytest.param([1, 2, 3], id="not-an-object"),
    ],
)
async def test_archive_garbage_is_a_502(
    client: TestClient, hostile: Hostile, answer: object
) -> None:
    if isinstance(answer, dict):
        answer = {**hostile.record(101), **answer}
    hostile.on("/frames/101/", Raw(answer))
    response = await client.get("/101/", params={"width": "64"})
    assert response.status == 502
    assert (await response.json())["message"].startswith(
        "The archive answered something unreadable"
    )
    healthy = await client.get("/201/", params={"width": "64"})  # nothing else is disturbed
    assert healthy.status == 200


async def test_a_malformed_next_link_is_a_502(client: TestClient, hostile: Hostile) -> None:
    listing = {"count": 9, "next": "http://[::1", "results": [hostile.record(201)]}
    hostile.on("/frames/?request_id=2000", Raw(listing))
    response = await client.get("/201/", params={"width": "64", "color": "true"})
    assert response.status == 502
    assert (await response.json())["message"].startswith(
        "The archive answered something unreadable"
    )


async def test_a_stalled_frame_does_not_delay_another(client: TestClient, hostile: Hostile) -> None:
    hostile.on("/frames/202/", Stall())
    stuck = [
        asyncio.ensure_future(
            client.get("/202/", params={"width": "64"}, headers={"Authorization": f"Token t{i}"})
        )
        for i in range(40)
    ]
    await hostile.wait_until(lambda: hostile.stalled == 4)  # ARCHIVE_CALLS_PER_FRAME
    innocent = await client.get("/201/", params={"width": "64"})
    assert innocent.status == 200
    assert not any(task.done() for task in stuck)
    hostile.release()
    for response in await asyncio.gather(*stuck):
        assert response.status == 401  # tokens the archive does not know
