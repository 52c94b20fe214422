"""The embedded sample archive: its frames, its permission rules and its downloads."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from astropy.io import fits

from thumbservice.adapters.archive.dev.sample_archive import (
    OWNER_TOKEN,
    SampleArchive,
    build_sample_archive,
)
from thumbservice.domain.errors import ArchiveRefused, ArchiveUnavailable, FrameNotFound
from thumbservice.domain.frames import Frame, FrameRules


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sample-archive")
    started = time.monotonic()
    build_sample_archive(directory)
    assert time.monotonic() - started < 15
    return directory


@pytest.fixture
def archive(archive_dir: Path) -> SampleArchive:
    return SampleArchive(archive_dir)


def by_id(records: list[dict]) -> dict[int, dict]:
    return {r["id"]: r for r in records}


def test_records_describe_the_generated_files(archive_dir: Path) -> None:
    records = by_id(build_sample_archive(archive_dir))
    assert sorted(records) == [1001, 1002, 1003, 1004, 1005, 1006, 1007]
    for record in records.values():
        assert record["url"] == "sample:" + record["filename"]
        assert record["filename"].startswith(record["basename"])
        assert (archive_dir / record["filename"]).is_file()
    assert records[1001]["basename"] == "ogg1m001-fa16-20190321-0101-e91"
    assert records[1001]["filename"].endswith(".fits.fz")
    assert records[1005]["filename"].endswith("-e00.fits")
    assert records[1005]["reduction_level"] == 0
    assert records[1005]["configuration_type"] == "BIAS"
    assert records[1006]["proposal_id"] == "LCO2026B-999"
    assert records[1007]["configuration_type"] == "SPECTRUM"
    assert [records[i]["primary_optical_element"] for i in (1002, 1003, 1004)] == ["rp", "V", "B"]
    with fits.open(archive_dir / records[1001]["filename"]) as hdul:
        assert hdul["SCI"].data.shape == (2048, 2048)
    with fits.open(archive_dir / records[1007]["filename"]) as hdul:
        assert hdul["SCI"].data.shape == (512, 2048)
    with fits.open(archive_dir / records[1005]["filename"]) as hdul:
        assert hdul[0].data.shape == (1024, 1024)


def test_an_existing_archive_is_reused_and_a_stale_one_rebuilt(
    archive_dir: Path, tmp_path: Path
) -> None:
    index = archive_dir / "frames.json"
    before = index.stat().st_mtime_ns
    assert len(build_sample_archive(archive_dir)) == 7
    assert index.stat().st_mtime_ns == before
    (tmp_path / "frames.json").write_text(json.dumps({"layout_version": -1, "frames": []}))
    assert len(build_sample_archive(tmp_path)) == 7
    assert json.loads((tmp_path / "frames.json").read_text())["layout_version"] != -1


@pytest.mark.asyncio
async def test_public_frame_by_id_and_basename(archive: SampleArchive) -> None:
    record = await archive.get_frame(1001, None)
    assert record.id == 1001
    found = await archive.find_by_basename("ogg1m001-fa16-20190321-0101-e91", None)
    assert [r.id for r in found] == [1001]
    assert await archive.find_by_basename("ogg1m001-fa16-20190321-0101", None) == []


@pytest.mark.asyncio
async def test_proprietary_frame_needs_a_token_on_its_proposal(
    archive: SampleArchive, archive_dir: Path
) -> None:
    with pytest.raises(FrameNotFound, match="Frame 1006 not found"):
        await archive.get_frame(1006, None)
    assert await archive.find_by_basename("ogg1m001-fa16-20260901-0042-e91", None) == []
    assert await archive.list_observing_request_frames(5005, 91, None) == []
    record = await archive.get_frame(1006, OWNER_TOKEN)
    assert record.proposal_id == "LCO2026B-999"
    assert [r.id for r in await archive.list_observing_request_frames(5005, 91, OWNER_TOKEN)] == [
        1006
    ]
    other = SampleArchive(archive_dir, tokens={"Token other": {"LCO2020A-001"}})
    with pytest.raises(FrameNotFound):
        await other.get_frame(1006, "Token other")
    assert (await other.get_frame(1001, "Token other")).id == 1001


@pytest.mark.asyncio
async def test_unknown_token_is_refused(archive: SampleArchive) -> None:
    for call in (
        archive.get_frame(1001, "Token nope"),
        archive.find_by_basename("x", "Token nope"),
        archive.list_observing_request_frames(5002, 91, "Bearer nope"),
    ):
        with pytest.raises(ArchiveRefused) as info:
            await call
        assert info.value.status == 401
        assert info.value.detail == {"detail": "Invalid token."}
    assert (await archive.get_frame(1001, "")).id == 1001


@pytest.mark.asyncio
async def test_missing_frame(archive: SampleArchive) -> None:
    with pytest.raises(FrameNotFound, match="Frame 99 not found"):
        await archive.get_frame(99, None)


@pytest.mark.asyncio
async def test_color_request_listing(archive: SampleArchive) -> None:
    frames = await archive.list_observing_request_frames(5002, 91, None)
    assert [r.id for r in frames] == [1002, 1003, 1004]
    red, visual, blue = FrameRules().pick_color_frames(frames)
    assert (red.id, visual.id, blue.id) == (1002, 1003, 1004)
    assert await archive.list_observing_request_frames(5002, 0, None) == []
    assert [r.id for r in await archive.list_observing_request_frames(5003, 0, None)] == [1005]


@pytest.mark.asyncio
async def test_records_returned_are_copies(archive: SampleArchive) -> None:
    frame = await archive.get_frame(1001, None)
    frame.record["url"] = "sample:../../etc/passwd"  # type: ignore[index]
    assert str((await archive.get_frame(1001, None)).record["url"]).startswith("sample:ogg1m001")


@pytest.mark.asyncio
async def test_download_copies_the_file(
    archive: SampleArchive, archive_dir: Path, tmp_path: Path
) -> None:
    frame = await archive.get_frame(1001, None)
    destination = tmp_path / "frame.fits.fz"
    written = await archive.download(frame, destination)
    expected = (archive_dir / str(frame.filename)).read_bytes()
    assert written == len(expected)
    assert destination.read_bytes() == expected


BAD_URLS = [
    "sample:../frames.json",
    "sample:a/b.fits",
    "sample:..",
    "sample:",
    "https://x/y.fits",
    None,
    "sample:missing.fits.fz",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.asyncio
async def test_download_refuses_urls_outside_the_archive(
    archive: SampleArchive, tmp_path: Path, url: str | None
) -> None:
    frame = Frame.from_record({"id": 1, "filename": "x.fits", "url": url})
    with pytest.raises(FrameNotFound):
        await archive.download(frame, tmp_path / "out.fits")
    assert not (tmp_path / "out.fits").exists()


@pytest.mark.asyncio
async def test_failed_download_removes_the_partial_file(
    archive: SampleArchive, tmp_path: Path
) -> None:
    frame = await archive.get_frame(1001, None)
    with pytest.raises(ArchiveUnavailable):
        await archive.download(frame, tmp_path / "no-such-dir" / "out.fits")
    assert not (tmp_path / "no-such-dir").exists()


@pytest.mark.asyncio
async def test_check(archive: SampleArchive, tmp_path: Path) -> None:
    await archive.check()
    missing = SampleArchive(tmp_path / "nothing")
    with pytest.raises(ArchiveUnavailable):
        await missing.check()
    with pytest.raises(ArchiveUnavailable):
        await missing.get_frame(1001, None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveUnavailable):
        await SampleArchive(tmp_path / "empty").check()


@pytest.mark.asyncio
async def test_cancelled_download_removes_the_partial_file(
    archive: SampleArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrote = asyncio.Event()
    real_to_thread = asyncio.to_thread

    async def stall_after_first_write(func, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = await real_to_thread(func, *args, **kwargs)
        if getattr(func, "__name__", "") == "write":
            wrote.set()
            await asyncio.sleep(30)
        return result

    monkeypatch.setattr(asyncio, "to_thread", stall_after_first_write)
    frame = await archive.get_frame(1001, None)
    destination = tmp_path / "out.fits.fz"
    task = asyncio.create_task(archive.download(frame, destination))
    await asyncio.wait_for(wrote.wait(), 5)
    assert destination.exists()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not destination.exists()
