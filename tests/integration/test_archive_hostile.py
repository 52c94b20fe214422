"""The archive adapter against an archive that breaks HTTP, lies, stalls and floods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.hostile_archive import (
    OWNER,
    HostileArchive,
    Record,
    Smuggle,
    running_hostile_archive,
)
from thumbservice.adapters.archive.http import HttpArchive
from thumbservice.domain.errors import ArchiveUnavailable

PRIVATE = "LCO2026B-999"


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
    with pytest.raises(ArchiveUnavailable, match=r"(?i)the archive answered something unreadable"):
        await archive.get_frame(2, None)
