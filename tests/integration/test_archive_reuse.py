"""ReusingArchive over an archive that counts its calls: answers reused per caller and frame for
a few seconds, never across callers, errors never kept."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fakes import FakeArchive, record
from thumbservice.adapters.archive.reuse import ReusingArchive
from thumbservice.domain.errors import FrameNotFound

OWNER = "Token owner"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def inner() -> FakeArchive:
    archive = FakeArchive()
    archive.add(record(101))
    archive.add(record(104, request_id=9), owner=OWNER)
    return archive


async def test_answers_are_reused_for_the_same_caller_for_a_few_seconds(
    inner: FakeArchive,
) -> None:
    clock = Clock()
    archive = ReusingArchive(inner, 5.0, clock=clock)
    for _ in range(3):
        assert (await archive.get_frame(101, None)).id == 101
    assert inner.calls == [("get_frame", 101, None)]
    clock.now += 4.9
    await archive.get_frame(101, None)
    assert len(inner.calls) == 1
    clock.now += 0.2
    await archive.get_frame(101, None)
    assert len(inner.calls) == 2


async def test_never_across_callers(inner: FakeArchive) -> None:
    archive = ReusingArchive(inner, 5.0, clock=Clock())
    assert (await archive.get_frame(104, OWNER)).id == 104
    with pytest.raises(FrameNotFound):
        await archive.get_frame(104, None)
    with pytest.raises(FrameNotFound):
        await archive.get_frame(104, "Token someone-else")
    assert [c[2] for c in inner.calls] == [OWNER, None, "Token someone-else"]


async def test_errors_are_asked_again(inner: FakeArchive) -> None:
    archive = ReusingArchive(inner, 5.0, clock=Clock())
    for _ in range(2):
        with pytest.raises(FrameNotFound):
            await archive.get_frame(999, None)
    assert len(inner.calls) == 2


async def test_concurrent_lookups_share_one_call(inner: FakeArchive) -> None:
    archive = ReusingArchive(inner, 5.0, clock=Clock())
    found = await asyncio.gather(*(archive.find_by_basename("x", None) for _ in range(10)))
    lists = await asyncio.gather(
        *(archive.list_observing_request_frames(9, 91, OWNER) for _ in range(4))
    )
    assert found == [[]] * 10 and all(len(x) == 1 for x in lists)
    assert len(inner.calls) == 2


async def test_old_answers_are_forgotten(inner: FakeArchive) -> None:
    clock = Clock()
    archive = ReusingArchive(inner, 5.0, max_entries=2, clock=clock)
    for frame_id in (101, 102, 103, 104):
        with pytest.raises(FrameNotFound) if frame_id in (102, 103, 104) else _nothing():
            await archive.get_frame(frame_id, None)
    assert len(archive._answers) <= 2
    clock.now += 10
    await archive.get_frame(101, None)
    assert list(archive._answers) == [("frame", (101,), None)]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def test_zero_seconds_is_not_a_reusing_archive(inner: FakeArchive) -> None:
    with pytest.raises(ValueError):
        ReusingArchive(inner, 0)
