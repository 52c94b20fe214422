"""One frame whose lookups stall must not starve lookups of other frames (real HTTP, a small
connection pool, the archive adapter behind the coalescing decorator as the app wires it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.hostile_archive import OWNER, HostileArchive, Stall, running_hostile_archive
from thumbservice.adapters.archive.coalescing import CoalescingArchive
from thumbservice.adapters.archive.http import HttpArchive
from thumbservice.domain.errors import ArchiveTimeout, FrameNotFound

POOL = 8  # connections of the API session
PER_FRAME = 2


def record(frame_id: int) -> dict:
    return {
        "id": frame_id,
        "basename": f"ogg1m001-fa16-20190321-{frame_id:04d}-e91",
        "filename": f"ogg1m001-fa16-20190321-{frame_id:04d}-e91.fits.fz",
        "proposal_id": "LCOEPO2018B-002",
        "request_id": 77,
        "configuration_type": "EXPOSE",
        "reduction_level": 91,
    }


@pytest.fixture
async def hostile() -> AsyncIterator[HostileArchive]:
    async with running_hostile_archive() as archive:
        for frame_id in (1, 2, 3):
            archive.add_frame(record(frame_id), b"file")
        archive.add_frame({**record(4), "proposal_id": "LCO2026B-999"}, b"file", private=True)
        yield archive


@pytest.fixture
async def archive(hostile: HostileArchive) -> AsyncIterator[CoalescingArchive]:
    connector = aiohttp.TCPConnector(limit=POOL)
    async with aiohttp.ClientSession(connector=connector) as api:
        inner = HttpArchive(api, hostile.root, metadata_timeout=60, list_timeout=60)
        yield CoalescingArchive(inner, per_frame=PER_FRAME, patience=60)
        hostile.release()
        await inner.close()


def stalled_calls(hostile: HostileArchive, path: str) -> int:
    return sum(seen.path == path for seen in hostile.seen)


async def test_many_callers_of_a_stalled_frame_leave_the_pool_to_others(
    archive: CoalescingArchive, hostile: HostileArchive
) -> None:
    hostile.on("/frames/1/", Stall())
    # Many callers with tokens of their own (nothing to share), many more than the pool.
    tokens = [f"Token caller-{i}" for i in range(5 * POOL)]
    stuck = [asyncio.ensure_future(archive.get_frame(1, token)) for token in tokens]
    await hostile.wait_until(lambda: hostile.stalled == PER_FRAME)
    assert archive.running("frame:1") == PER_FRAME

    innocent = await archive.get_frame(2, None)
    assert innocent.id == 2
    assert [(await archive.find_by_basename(record(3)["basename"], None))[0].id] == [3]
    # ...while every call for the stalled frame is still waiting, and no more of them reached
    # the archive than the frame's share.
    assert not any(task.done() for task in stuck)
    assert stalled_calls(hostile, "/frames/1/") == PER_FRAME

    hostile.release()
    answers = await asyncio.gather(*stuck, return_exceptions=True)
    # The archive does not know these tokens: each caller got its own refusal, not a shared one.
    assert all(getattr(a, "status", None) == 401 for a in answers)
    assert stalled_calls(hostile, "/frames/1/") == len(tokens)


async def test_identical_lookups_share_one_call_for_the_same_authorization_only(
    archive: CoalescingArchive, hostile: HostileArchive
) -> None:
    hostile.on("/frames/4/", Stall())
    anonymous = [asyncio.ensure_future(archive.get_frame(4, None)) for _ in range(30)]
    owners = [asyncio.ensure_future(archive.get_frame(4, OWNER)) for _ in range(30)]
    await hostile.wait_until(lambda: hostile.stalled == 2)
    assert archive.in_flight == 2
    assert sorted(seen.authorization or "anonymous" for seen in hostile.seen) == [
        OWNER,
        "anonymous",
    ]

    hostile.release()
    for answer in await asyncio.gather(*anonymous, return_exceptions=True):
        assert isinstance(answer, FrameNotFound)  # the private frame stays hidden from them
    assert {(await task).proposal_id for task in owners} == {"LCO2026B-999"}
    assert archive.in_flight == 0


async def test_a_caller_waiting_too_long_for_its_turn_gets_a_timeout(
    hostile: HostileArchive,
) -> None:
    hostile.on("/frames/1/", Stall())
    async with aiohttp.ClientSession() as api:
        inner = HttpArchive(api, hostile.root, metadata_timeout=60)
        archive = CoalescingArchive(inner, per_frame=1, patience=0.2)
        first = asyncio.ensure_future(archive.get_frame(1, None))
        await hostile.wait_until(lambda: hostile.stalled == 1)
        with pytest.raises(ArchiveTimeout, match="slow to answer"):
            await archive.get_frame(1, OWNER)
        assert not first.done()
        hostile.release()
        assert (await first).id == 1
        await inner.close()
