"""The archive stand-in: it must answer like the real archive, or the tests built on it lie."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.support.archive_server import ArchiveStub, Fault, running_archive
from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_record, write_frame

OWNER = "Token sample-owner-token"


@pytest_asyncio.fixture
async def stub(tmp_path: Path) -> AsyncIterator[ArchiveStub]:
    async with running_archive(tmp_path) as archive:
        yield archive


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


def add(
    stub: ArchiveStub,
    frame_id: int,
    *,
    request_id: int = 5002,
    band: str = "rp",
    public: bool = True,
    proposal: str = "LCOEPO2018B-002",
    size: int = 200_000,
) -> dict:
    spec = FrameSpec(
        f"ogg1m001-fa16-20190321-{frame_id:04d}-e91",
        filter=band,
        request_id=request_id,
        proposal_id=proposal,
    )
    path = stub.files_dir / spec.filename
    path.write_bytes(bytes(range(256)) * (size // 256))
    return stub.add_frame(frame_record(spec, frame_id, "unset"), path, public=public)


async def fetch(http: aiohttp.ClientSession, url: str, **kwargs: object) -> bytes:
    async with http.get(url, **kwargs) as response:  # type: ignore[arg-type]
        return await response.read()


async def get_json(http: aiohttp.ClientSession, url: str, auth: str | None = None):
    headers = {"Authorization": auth} if auth is not None else {}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.asyncio
async def test_root_and_frame_by_id(stub: ArchiveStub, http: aiohttp.ClientSession) -> None:
    assert stub.root.startswith("http://127.0.0.1:")
    assert stub.root.endswith("/")
    record = add(stub, 1001)
    assert record["url"].startswith(stub.root + "files/1001/")
    status, body = await get_json(http, stub.root + "frames/1001/")
    assert status == 200
    assert body["id"] == 1001
    assert body["url"] == record["url"]
    assert await get_json(http, stub.root + "frames/9/") == (404, {"detail": "Not found."})
    assert stub.lookups == [("/frames/1001/", None), ("/frames/9/", None)]


@pytest.mark.asyncio
async def test_basename_exact(stub: ArchiveStub, http: aiohttp.ClientSession) -> None:
    add(stub, 1001)
    add(stub, 1002)
    status, body = await get_json(
        http, stub.root + "frames/?basename_exact=ogg1m001-fa16-20190321-1001-e91"
    )
    assert status == 200
    assert body["count"] == 1
    assert [r["id"] for r in body["results"]] == [1001]
    assert body["next"] is None
    assert body["previous"] is None
    _, body = await get_json(http, stub.root + "frames/?basename_exact=ogg1m001-fa16")
    assert body["count"] == 0


@pytest.mark.asyncio
async def test_pagination_across_two_pages(stub: ArchiveStub, http: aiohttp.ClientSession) -> None:
    stub.page_size = 2
    for frame_id in (11, 12, 13):
        add(stub, frame_id, request_id=7, size=256)
    add(stub, 14, request_id=8, size=256)
    status, first = await get_json(http, stub.root + "frames/?request_id=7&reduction_level=91")
    assert status == 200
    assert first["count"] == 3
    assert [r["id"] for r in first["results"]] == [11, 12]
    assert first["previous"] is None
    assert first["next"].startswith(stub.root + "frames/?")
    assert "offset=2" in first["next"]
    assert "request_id=7" in first["next"]
    _, second = await get_json(http, first["next"])
    assert [r["id"] for r in second["results"]] == [13]
    assert second["next"] is None
    _, again = await get_json(http, second["previous"])
    assert again == first
    _, body = await get_json(http, stub.root + "frames/?request_id=7&reduction_level=0")
    assert body["count"] == 0
    status, body = await get_json(http, stub.root + "frames/?request_id=x")
    assert status == 400
    assert body == {"request_id": ["Enter a number."]}


@pytest.mark.asyncio
async def test_proprietary_visibility(stub: ArchiveStub, http: aiohttp.ClientSession) -> None:
    add(stub, 1006, request_id=9, public=False, proposal="LCO2026B-999")
    stub.tokens["Token other"] = {"LCO2020A-001"}
    url = stub.root + "frames/1006/"
    assert (await get_json(http, url))[0] == 404
    assert (await get_json(http, url, "Token other"))[0] == 404
    assert (await get_json(http, url, OWNER))[0] == 200
    assert (await get_json(http, url, "Token forged")) == (401, {"detail": "Invalid token."})
    listing = stub.root + "frames/?request_id=9&reduction_level=91"
    assert (await get_json(http, listing))[1]["count"] == 0
    assert (await get_json(http, listing, OWNER))[1]["count"] == 1
    assert (await get_json(http, listing, "Bearer forged"))[0] == 401
    assert stub.lookups[2] == ("/frames/1006/", OWNER)


@pytest.mark.asyncio
async def test_download_is_counted_and_refuses_authorization(
    stub: ArchiveStub, http: aiohttp.ClientSession
) -> None:
    spec = FrameSpec("ogg1m001-fa16-20190321-0101-e91", width=256, height=256, stars=20)
    path = write_frame(spec, stub.files_dir)
    record = stub.add_frame(frame_record(spec, 1001, "unset"), path)
    async with http.get(record["url"]) as response:
        assert response.status == 200
        assert response.content_length == path.stat().st_size
        assert await response.read() == path.read_bytes()
    assert stub.downloads[1001] == 1
    async with http.get(record["url"], headers={"Authorization": OWNER}) as response:
        assert response.status == 400
        assert "Only one auth mechanism allowed" in await response.text()
    assert stub.downloads[1001] == 1
    assert stub.download_auth_headers == [None, OWNER]
    unsigned = record["url"].split("?")[0]
    async with http.get(unsigned) as response:
        assert response.status == 403
    async with http.get(stub.root + "files/1001/other.fits") as response:
        assert response.status == 404


@pytest.mark.asyncio
async def test_record_without_a_file_keeps_its_url(stub: ArchiveStub) -> None:
    record = stub.add_frame(
        {"id": 5, "url": "https://s3.example/x.fits", "public_date": None}, None
    )
    assert record["url"] == "https://s3.example/x.fits"
    assert record["public_date"] == "2020-03-21T10:11:12.345000Z"


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [500, 503, 429, 401, 403])
async def test_metadata_status_faults(
    stub: ArchiveStub, http: aiohttp.ClientSession, status: int
) -> None:
    add(stub, 1001)
    stub.fault = Fault(status=status, times=1)
    async with http.get(stub.root + "frames/1001/") as response:
        assert response.status == status
        if status == 429:
            assert response.headers["Retry-After"] == "5"
        if status < 500:
            assert "detail" in await response.json()
    assert (await get_json(http, stub.root + "frames/1001/"))[0] == 200


@pytest.mark.asyncio
async def test_metadata_delay_and_reset(stub: ArchiveStub, http: aiohttp.ClientSession) -> None:
    add(stub, 1001)
    stub.fault = Fault(delay=2.0)
    with pytest.raises(asyncio.TimeoutError):
        await fetch(http, stub.root + "frames/1001/", timeout=aiohttp.ClientTimeout(total=0.2))
    stub.fault = Fault(reset=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(http, stub.root + "frames/1001/")
    stub.fault = None
    assert (await get_json(http, stub.root + "frames/1001/"))[0] == 200


@pytest.mark.asyncio
async def test_file_faults(stub: ArchiveStub, http: aiohttp.ClientSession) -> None:
    record = add(stub, 1001)
    original = (stub.files_dir / record["filename"]).read_bytes()
    stub.file_fault = Fault(truncate=True, times=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch(http, record["url"])
    stub.file_fault = Fault(corrupt=True, times=1)
    async with http.get(record["url"]) as response:
        body = await response.read()
    assert len(body) == len(original)
    assert body != original
    stub.file_fault = Fault(status=500, times=1)
    async with http.get(record["url"]) as response:
        assert response.status == 500
        assert "<Code>InternalError</Code>" in await response.text()
    stub.file_fault = Fault(stall=2.0, times=1)
    with pytest.raises(asyncio.TimeoutError):
        await fetch(http, record["url"], timeout=aiohttp.ClientTimeout(sock_read=0.2))
    # Not times=1: aiohttp retries once by itself when a reused connection is dropped.
    stub.file_fault = Fault(reset=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(http, record["url"])
    stub.file_fault = None
    async with http.get(record["url"]) as response:
        assert await response.read() == original
    assert stub.downloads[1001] == 4  # truncated, corrupt, stalled, then whole
