"""The archive adapter against the stand-in archive server, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.archive_server import ArchiveStub, Fault, running_archive
from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_record, write_frame
from thumbservice.adapters.archive.http import HttpArchive
from thumbservice.domain.errors import (
    ArchiveRefused,
    ArchiveTimeout,
    ArchiveUnavailable,
    FrameNotFound,
)

OWNER = "Token sample-owner-token"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    directory = tmp_path_factory.mktemp("archive-files")
    specs = {
        1: FrameSpec("ogg1m001-fa16-20190321-0001-e91", width=128, height=128, filter="rp"),
        2: FrameSpec("ogg1m001-fa16-20190321-0002-e91", width=128, height=128, filter="V"),
        3: FrameSpec("ogg1m001-fa16-20190321-0003-e91", width=128, height=128, filter="B"),
        4: FrameSpec(
            "ogg1m001-fa16-20260901-0004-e91", width=128, height=128, proposal_id="LCO2026B-999"
        ),
    }
    return {i: write_frame(spec, directory) for i, spec in specs.items()}


@pytest.fixture
async def stub(files: dict[int, Path]) -> AsyncIterator[ArchiveStub]:
    async with running_archive(files[1].parent) as stub:
        for frame_id, path in files.items():
            spec_record = frame_record(
                FrameSpec(path.name.removesuffix(".fits.fz")), frame_id, url="", request_id=77
            )
            spec_record["proposal_id"] = "LCO2026B-999" if frame_id == 4 else "LCOEPO2018B-002"
            stub.add_frame(spec_record, path, public=frame_id != 4)
        yield stub


@pytest.fixture
async def archive(stub: ArchiveStub) -> AsyncIterator[HttpArchive]:
    async with aiohttp.ClientSession() as session:
        archive = HttpArchive(session, stub.root, metadata_timeout=0.5, list_timeout=0.5)
        yield archive
        await archive.close()


async def test_lookups_forward_authorization_and_respect_permissions(
    archive: HttpArchive, stub: ArchiveStub
) -> None:
    assert (await archive.get_frame(1, None)).id == 1
    with pytest.raises(FrameNotFound):
        await archive.get_frame(4, None)
    assert (await archive.get_frame(4, OWNER)).proposal_id == "LCO2026B-999"
    assert ("/frames/4/", OWNER) in stub.lookups
    with pytest.raises(ArchiveRefused) as refused:
        await archive.get_frame(1, "Token nobody")
    assert refused.value.status == 401


async def test_basename_and_paginated_request_listing(
    archive: HttpArchive, stub: ArchiveStub
) -> None:
    found = await archive.find_by_basename("ogg1m001-fa16-20190321-0002-e91", None)
    assert [r.id for r in found] == [2]
    stub.max_limit = 1  # the adapter asks for 1000 a page; the server gives one
    listed = await archive.list_observing_request_frames(77, 91, OWNER)
    assert [r.id for r in listed] == [1, 2, 3, 4]
    assert sum("request_id=77" in path for path, _ in stub.lookups) >= 4
    assert {auth for path, auth in stub.lookups if "request_id" in path} == {OWNER}


async def test_download_uses_the_presigned_url_without_authorization(
    archive: HttpArchive, stub: ArchiveStub, files: dict[int, Path], tmp_path: Path
) -> None:
    record = await archive.get_frame(1, OWNER)
    size = await archive.download(record, tmp_path / "f.fits.fz")
    assert (tmp_path / "f.fits.fz").read_bytes() == files[1].read_bytes()
    assert size == files[1].stat().st_size
    assert stub.downloads[1] == 1
    assert stub.download_auth_headers == [None]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=502), ArchiveUnavailable),
        (Fault(reset=True), ArchiveUnavailable),
        (Fault(delay=2.0), ArchiveTimeout),
    ],
)
async def test_metadata_faults(
    archive: HttpArchive, stub: ArchiveStub, fault: Fault, error: type[Exception]
) -> None:
    stub.fault = fault
    with pytest.raises(error):
        await archive.get_frame(1, None)


async def test_interrupted_download_leaves_no_file(
    archive: HttpArchive, stub: ArchiveStub, tmp_path: Path
) -> None:
    record = await archive.get_frame(1, None)
    stub.file_fault = Fault(truncate=True)
    with pytest.raises(ArchiveUnavailable):
        await archive.download(record, tmp_path / "f.fits.fz")
    assert list(tmp_path.iterdir()) == []


async def test_check(archive: HttpArchive, stub: ArchiveStub) -> None:
    await archive.check()
    stub.fault = Fault(status=503)
    with pytest.raises(ArchiveUnavailable):
        await archive.check()
