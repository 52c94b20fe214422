"""An ArchiveGateway that reuses the archive's answers for a few seconds, per caller.

A deep-zoom viewer asks for dozens of tiles of one frame at once, and each tile is a
permission check: the same lookup, with the same Authorization, dozens of times in a second.
This decorator answers those from the first one, for `seconds` after it arrived, and lets
concurrent identical lookups share one call. An answer is reused only for the very same
Authorization value (anonymous being a value of its own), never across callers; errors are
never kept, so a refusal is asked again the next time. Downloads and checks pass through.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from thumbservice.domain.frames import Frame
from thumbservice.domain.ports import ArchiveGateway

T = TypeVar("T")
Key = tuple[str, tuple[Any, ...], str | None]

DEFAULT_MAX_ENTRIES = 4096


class ReusingArchive:
    """ArchiveGateway over `inner`, each lookup's answer reused for `seconds` (> 0)."""

    def __init__(
        self,
        inner: ArchiveGateway,
        seconds: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive: without reuse, use the archive itself")
        self.inner = inner
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._answers: OrderedDict[Key, tuple[float, asyncio.Future[Any]]] = OrderedDict()

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame:
        return await self._reused(
            ("frame", (frame_id,), authorization),
            lambda: self.inner.get_frame(frame_id, authorization),
        )

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]:
        found = await self._reused(
            ("basename", (basename,), authorization),
            lambda: self.inner.find_by_basename(basename, authorization),
        )
        return list(found)

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        found = await self._reused(
            ("request", (observing_request_id, reduction_level), authorization),
            lambda: self.inner.list_observing_request_frames(
                observing_request_id, reduction_level, authorization
            ),
        )
        return list(found)

    async def download(self, frame: Frame, destination: Path) -> int:
        return await self.inner.download(frame, destination)

    async def check(self) -> None:
        await self.inner.check()

    async def _reused(self, key: Key, call: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        kept = self._answers.get(key)
        if kept is not None and now - kept[0] < self.seconds:
            answer: asyncio.Future[T] = kept[1]
        else:
            answer = asyncio.ensure_future(call())
            self._answers[key] = (now, answer)
            self._answers.move_to_end(key)
            answer.add_done_callback(lambda done: self._landed(key, done))
            self._trim(now)
        # A caller that goes away does not cancel the call the others wait for.
        return await asyncio.shield(answer)

    def _landed(self, key: Key, answer: asyncio.Future[Any]) -> None:
        if answer.cancelled() or answer.exception() is not None:
            kept = self._answers.get(key)
            if kept is not None and kept[1] is answer:
                del self._answers[key]

    def _trim(self, now: float) -> None:
        """Forget the answers past their time (the oldest come first), and the oldest beyond
        `max_entries`; a call still under way goes on for those who wait for it."""
        while self._answers:
            since, _ = next(iter(self._answers.values()))
            if now - since < self.seconds and len(self._answers) <= self.max_entries:
                break
            self._answers.popitem(last=False)
