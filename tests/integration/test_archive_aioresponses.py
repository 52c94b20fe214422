"""The archive adapter against aioresponses: every answer of the archive and how it maps."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aioresponses import aioresponses

from thumbservice.adapters.archive.http import HttpArchive
from thumbservice.domain.errors import (
    ArchiveRefused,
    ArchiveTimeout,
    ArchiveUnavailable,
    FrameNotFound,
    FrameTooLarge,
)
from thumbservice.domain.frames import Frame

ROOT = "http://archive.test/"
TOKEN = "Token 0123456789abcdef"


@pytest.fixture
async def archive() -> AsyncIterator[HttpArchive]:
    async with aiohttp.ClientSession() as session:
        archive = HttpArchive(session, ROOT, max_download_bytes=1000)
        yield archive
        await archive.close()


@pytest.fixture
def mocked() -> AsyncIterator[aioresponses]:
    with aioresponses() as m:
        yield m


def sent_headers(mocked: aioresponses, method: str, url: str) -> dict[str, str]:
    for (verb, called), calls in mocked.requests.items():
        if verb == method and str(called).startswith(url):
            return dict(calls[-1].kwargs.get("headers") or {})
    raise AssertionError(f"{url} was not called")


async def test_get_frame_forwards_authorization(archive: HttpArchive, mocked: aioresponses) -> None:
    mocked.get(f"{ROOT}frames/42/", payload={"id": 42, "filename": "x.fits.fz"})
    frame = await archive.get_frame(42, TOKEN)
    assert frame.id == 42
    assert sent_headers(mocked, "GET", f"{ROOT}frames/42/") == {"Authorization": TOKEN}


async def test_anonymous_calls_send_no_authorization(
    archive: HttpArchive, mocked: aioresponses
) -> None:
    mocked.get(f"{ROOT}frames/42/", payload={"id": 42})
    await archive.get_frame(42, None)
    assert "Authorization" not in sent_headers(mocked, "GET", f"{ROOT}frames/42/")


async def test_basename_search_uses_the_exact_index(
    archive: HttpArchive, mocked: aioresponses
) -> None:
    mocked.get(
        f"{ROOT}frames/?basename_exact=ogg-e91",
        payload={
            "count": 1,
            "next": None,
            "previous": None,
            "results": [{"id": 1, "basename": "ogg-e91"}],
        },
    )
    assert [f.id for f in await archive.find_by_basename("ogg-e91", TOKEN)] == [1]


async def test_request_listing_follows_pagination(
    archive: HttpArchive, mocked: aioresponses
) -> None:
    first = re.compile(r"^http://archive\.test/frames/\?.*request_id=7.*$")
    second = f"{ROOT}frames/?offset=1000&request_id=7"
    mocked.get(first, payload={"count": 2, "next": second, "results": [{"id": 1, "request_id": 7}]})
    mocked.get(second, payload={"count": 2, "next": None, "results": [{"id": 2, "request_id": 7}]})
    frames = await archive.list_observing_request_frames(7, 91, TOKEN)
    assert [f.id for f in frames] == [1, 2]
    assert sent_headers(mocked, "GET", second) == {"Authorization": TOKEN}


async def test_authorization_never_follows_a_link_to_another_host(
    archive: HttpArchive, mocked: aioresponses
) -> None:
    elsewhere = "http://evil.test/frames/?offset=1000"
    mocked.get(
        re.compile(r"^http://archive\.test/frames/\?.*$"),
        payload={"count": 2, "next": elsewhere, "results": [{"id": 1, "request_id": 7}]},
    )
    mocked.get(
        elsewhere, payload={"count": 2, "next": None, "results": [{"id": 2, "request_id": 7}]}
    )
    await archive.list_observing_request_frames(7, 91, TOKEN)
    assert "Authorization" not in sent_headers(mocked, "GET", elsewhere)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, FrameNotFound),
        (500, ArchiveUnavailable),
        (502, ArchiveUnavailable),
        (503, ArchiveUnavailable),
    ],
)
async def test_status_mapping(
    archive: HttpArchive, mocked: aioresponses, status: int, error: type[Exception]
) -> None:
    mocked.get(f"{ROOT}frames/42/", status=status, payload={"detail": "x"})
    with pytest.raises(error):
        await archive.get_frame(42, None)


@pytest.mark.parametrize("status", [401, 403, 429])
async def test_refusals_keep_their_status_and_detail(
    archive: HttpArchive, mocked: aioresponses, status: int
) -> None:
    mocked.get(f"{ROOT}frames/42/", status=status, payload={"detail": "Invalid token."})
    with pytest.raises(ArchiveRefused) as refused:
        await archive.get_frame(42, "Token bad")
    assert refused.value.status == status
    assert refused.value.detail == {"detail": "Invalid token."}
    assert "Invalid token." in refused.value.message


async def test_timeout_and_connection_errors(archive: HttpArchive, mocked: aioresponses) -> None:
    mocked.get(f"{ROOT}frames/1/", exception=TimeoutError())
    mocked.get(f"{ROOT}frames/2/", exception=aiohttp.ClientConnectionError("refused"))
    with pytest.raises(ArchiveTimeout):
        await archive.get_frame(1, None)
    with pytest.raises(ArchiveUnavailable, match="cannot be reached") as refused:
        await archive.get_frame(2, None)
    assert "refused" not in refused.value.message  # the cause goes to the log, not the caller


async def test_non_json_answer_is_unavailable(archive: HttpArchive, mocked: aioresponses) -> None:
    mocked.get(f"{ROOT}frames/42/", body="<html>proxy error</html>", status=200)
    with pytest.raises(ArchiveUnavailable, match="JSON"):
        await archive.get_frame(42, None)


def frame(url: str) -> Frame:
    return Frame.from_record({"id": 9, "filename": "f.fits.fz", "url": url})


async def test_download_writes_the_file_without_authorization(
    archive: HttpArchive, mocked: aioresponses, tmp_path: Path
) -> None:
    url = "https://s3.test/f.fits.fz?X-Amz-Signature=abc%2Fdef"
    mocked.get(url, body=b"SIMPLE  =  T" * 10)
    size = await archive.download(frame(url), tmp_path / "f.fits.fz")
    assert size == 120
    assert (tmp_path / "f.fits.fz").read_bytes() == b"SIMPLE  =  T" * 10
    assert "Authorization" not in sent_headers(mocked, "GET", "https://s3.test/f.fits.fz")


async def test_download_over_the_limit_is_refused_and_removed(
    archive: HttpArchive, mocked: aioresponses, tmp_path: Path
) -> None:
    url = "https://s3.test/big.fits.fz"
    mocked.get(url, body=b"x" * 5000)
    with pytest.raises(FrameTooLarge, match="1000 bytes"):
        await archive.download(frame(url), tmp_path / "big.fits.fz")
    assert not list(tmp_path.iterdir())


async def test_download_failure_status(
    archive: HttpArchive, mocked: aioresponses, tmp_path: Path
) -> None:
    url = "https://s3.test/expired.fits.fz"
    mocked.get(url, status=403, body=b"<Error>Request has expired</Error>")
    with pytest.raises(ArchiveUnavailable, match="403"):
        await archive.download(frame(url), tmp_path / "x.fits.fz")
    assert not list(tmp_path.iterdir())


async def test_a_relative_file_url_is_taken_from_the_archive(
    archive: HttpArchive, mocked: aioresponses, tmp_path: Path
) -> None:
    mocked.get(f"{ROOT}files/9/f.fits.fz", body=b"SIMPLE")
    assert await archive.download(frame("/files/9/f.fits.fz"), tmp_path / "f.fits.fz") == 6
