"""The archive adapter against an archive that breaks HTTP, lies, stalls and floods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.hostile_archive import (
    OWNER,
    Flood,
    HostileArchive,
    Raw,
    Record,
    Smuggle,
    Stall,
    Trickle,
    running_hostile_archive,
)
from thumbservice.adapters.archive.http import HttpArchive
from thumbservice.domain.errors import ArchiveRefused, ArchiveTimeout, ArchiveUnavailable

PRIVATE = "LCO2026B-999"
UNREADABLE = r"^The archive answered something unreadable"


def page(*records: dict) -> dict:
    return {"count": len(records), "next": None, "previous": None, "results": list(records)}


def record(frame_id: int, *, request_id: int = 77, proposal: str = "LCOEPO2018B-002") -> dict:
    return {
        "id": frame_id,
        "basename": f"ogg1m001-fa16-20190321-{frame_id:04d}-e91",
        "filename": f"ogg1m001-fa16-20190321-{frame_id:04d}-e91.fits.fz",
        "proposal_id": proposal,
        "request_id": request_id,
        "configuration_type": "EXPOSE",
        "primary_optical_element": "rp",
        "reduction_level": 91,
    }


@pytest.fixture
async def hostile() -> AsyncIterator[HostileArchive]:
    async with running_hostile_archive() as archive:
        for frame_id in (1, 2, 3):
            archive.add_frame(record(frame_id), b"public file %d" % frame_id)
        archive.add_frame(record(4, request_id=78, proposal=PRIVATE), b"private", private=True)
        yield archive


@pytest.fixture
async def archive(hostile: HostileArchive) -> AsyncIterator[HttpArchive]:
    async with aiohttp.ClientSession() as api, aiohttp.ClientSession() as files:
        yield HttpArchive(
            api, hostile.root, download_session=files, metadata_timeout=5, list_timeout=5
        )


async def test_an_extra_response_after_a_download_reaches_no_other_caller(
    archive: HttpArchive, hostile: HostileArchive, tmp_path: Path
) -> None:
    assert (await archive.get_frame(4, OWNER)).proposal_id == PRIVATE
    hostile.on("/files/1/", Smuggle(4), times=1)
    frame = await archive.get_frame(1, None)
    assert await archive.download(frame, tmp_path / "f") == len(b"public file 1")
    assert hostile.smuggled == 1
    # The next anonymous callers get their own frames, not the private record queued after
    # the file, and none of them waits for anything.
    for frame_id in (2, 3, 1):
        got = await archive.get_frame(frame_id, None)
        assert (got.id, got.proposal_id) == (frame_id, "LCOEPO2018B-002")
    api_connections = {s.connection for s in hostile.seen if s.path.startswith("/frames/")}
    file_connections = {s.connection for s in hostile.seen if s.path.startswith("/files/")}
    assert not api_connections & file_connections


async def test_another_frames_record_is_refused(
    archive: HttpArchive, hostile: HostileArchive
) -> None:
    hostile.on("/frames/2/", Record(4))
    with pytest.raises(ArchiveUnavailable, match=UNREADABLE):
        await archive.get_frame(2, None)


async def test_a_basename_search_answering_another_frame_is_refused(
    archive: HttpArchive, hostile: HostileArchive
) -> None:
    hostile.on("/frames/?basename_exact=", Raw(page(hostile.record(4))))
    with pytest.raises(ArchiveUnavailable, match=UNREADABLE):
        await archive.find_by_basename(record(2)["basename"], None)


async def test_a_colour_list_with_another_requests_frame_is_refused(
    archive: HttpArchive, hostile: HostileArchive
) -> None:
    assert [f.id for f in await archive.list_observing_request_frames(77, 91, None)] == [1, 2, 3]
    hostile.on("/frames/?request_id=77", Raw(page(hostile.record(1), hostile.record(4))))
    with pytest.raises(ArchiveUnavailable, match=UNREADABLE):
        await archive.list_observing_request_frames(77, 91, OWNER)


def deep(levels: int) -> bytes:
    return b'{"id": 1, "x": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(deep(5000), id="nested-5000-deep"),
        pytest.param({**record(1), "url": "http://[::1"}, id="url-broken-ipv6"),
        pytest.param({**record(1), "url": "http://127.0.0.1:99999/f"}, id="url-port-99999"),
        pytest.param({**record(1), "url": "ftp://127.0.0.1/f"}, id="url-not-http"),
        pytest.param({**record(1), "url": ["http://x/"]}, id="url-a-list"),
        pytest.param({**record(1), "id": 2**64}, id="id-out-of-range"),
        pytest.param({**record(1), "id": "1"}, id="id-a-string"),
        pytest.param({**record(1), "filename": 123}, id="filename-a-number"),
        pytest.param({**record(1), "request_id": "seventy-seven"}, id="request-id-a-word"),
        pytest.param([record(1)], id="a-list-not-an-object"),
        pytest.param("just a string", id="a-string"),
        pytest.param(b'{"id": 1, "basename": "\xff\xfe"}', id="not-utf8"),
        pytest.param(b'{"id": 1' + b"1" * 5000 + b"}", id="a-5000-digit-number"),
    ],
)
async def test_a_garbage_record_is_unreadable(
    archive: HttpArchive, hostile: HostileArchive, answer: object
) -> None:
    hostile.on("/frames/1/", Raw(answer))
    with pytest.raises(ArchiveUnavailable, match=UNREADABLE) as unreadable:
        await archive.get_frame(1, None)
    assert hostile.root not in unreadable.value.message
    hostile.rules.clear()  # nothing else is disturbed: the next call is answered as usual
    assert (await archive.get_frame(1, None)).id == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"count": 1, "next": "http://[::1", "results": []}, id="next-malformed"),
        pytest.param({"count": 1, "next": "/frames/?offset=1", "results": []}, id="next-relative"),
        pytest.param({"count": 1, "next": 2, "results": []}, id="next-a-number"),
        pytest.param({"count": 1, "next": None, "results": {"id": 1}}, id="results-an-object"),
        pytest.param({"count": 1, "next": None, "results": [1, "x"]}, id="results-not-records"),
        pytest.param(
            {"count": 1, "next": None, "results": [{**record(1), "id": -1}]}, id="id-negative"
        ),
        pytest.param(
            {"count": 1, "next": None, "results": [{**record(1), "id": None}]}, id="id-missing"
        ),
        pytest.param([record(1)], id="a-list-not-a-page"),
    ],
)
async def test_a_garbage_listing_is_unreadable(
    archive: HttpArchive, hostile: HostileArchive, answer: object
) -> None:
    hostile.on("/frames/?request_id=77", Raw(answer))
    with pytest.raises(ArchiveUnavailable, match=UNREADABLE):
        await archive.list_observing_request_frames(77, 91, None)


async def test_an_endless_answer_is_cut_off_at_the_size_limit(hostile: HostileArchive) -> None:
    hostile.on("/frames/1/", Flood())
    hostile.on("/frames/2/", Flood(length=1 << 30))
    async with aiohttp.ClientSession() as api:
        archive = HttpArchive(api, hostile.root, max_answer_bytes=1 << 20, metadata_timeout=30)
        for frame_id in (1, 2):
            with pytest.raises(ArchiveUnavailable, match="larger than 1048576 bytes"):
                await archive.get_frame(frame_id, None)
        assert (await archive.get_frame(3, None)).id == 3
        await archive.close()


async def test_a_large_answer_is_read_in_full(
    archive: HttpArchive, hostile: HostileArchive
) -> None:
    padded = [{**record(1), "padding": "x" * 1000, "id": 1}] * 600  # > 512 KB
    hostile.on("/frames/?request_id=77", Raw(page(*padded)))
    assert len(await archive.list_observing_request_frames(77, 91, None)) == 600


async def test_a_listing_is_bounded_as_a_whole_not_page_by_page(hostile: HostileArchive) -> None:
    # Every page comes slowly but well within the limit; the listing as a whole never ends.
    endless = {**page(hostile.record(1)), "next": f"{hostile.root}frames/?request_id=77&more=1"}
    hostile.on("/frames/?request_id=77", Trickle(interval=0.05, size=64, document=endless))
    async with aiohttp.ClientSession() as api:
        archive = HttpArchive(api, hostile.root, list_timeout=2)
        with pytest.raises(ArchiveTimeout, match="2 s"):
            await archive.list_observing_request_frames(77, 91, None)
    assert len([s for s in hostile.seen if "request_id=77" in s.path]) < 50


async def test_a_stalled_lookup_is_a_timeout(hostile: HostileArchive) -> None:
    hostile.on("/frames/1/", Stall())
    async with aiohttp.ClientSession() as api:
        archive = HttpArchive(api, hostile.root, metadata_timeout=0.5)
        with pytest.raises(ArchiveTimeout):
            await archive.get_frame(1, None)
        assert hostile.stalled <= 1


@pytest.mark.parametrize(("given", "passed_on"), [("999999999", 300), ("0", 1), ("7", 7)])
async def test_a_throttling_archives_retry_after_is_clamped(
    archive: HttpArchive, hostile: HostileArchive, given: str, passed_on: int
) -> None:
    throttled = Raw({"detail": "Request was throttled."}, 429, headers={"Retry-After": given})
    hostile.on("/frames/1/", throttled)
    with pytest.raises(ArchiveRefused) as refused:
        await archive.get_frame(1, None)
    assert (refused.value.status, refused.value.retry_after) == (429, passed_on)
