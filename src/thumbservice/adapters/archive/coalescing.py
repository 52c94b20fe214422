"""An ArchiveGateway decorator that keeps one frame's lookups from taking the whole archive.

Two rules, for the lookups (a frame by id, a basename, an observing request's list):

- Identical lookups in flight share one call, for the same Authorization only: a hundred
  anonymous requests for one frame are one call to the archive, but a caller never gets an
  answer made for another caller's token.
- At most `per_frame` calls about one subject (a frame id, a basename, a request id) run at
  once; more wait their turn, at most `patience` seconds, without holding a connection. The
  connection pool is thus left to everyone else when one frame's lookups stall: the archive
  answers an innocent request for another frame as it would have without them.

Downloads and the readiness check go straight through (downloads are shared by the service's
own single flight, per thumbnail).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from thumbservice.domain.concurrency import SingleFlight
from thumbservice.domain.errors import ArchiveTimeout
from thumbservice.domain.frames import Frame
from thumbservice.domain.ports import ArchiveGateway

T = TypeVar("T")
DEFAULT_PER_FRAME = 4


@dataclass
class _Subject:
    """The calls about one subject: how many run, and how many are interested."""

    slots: asyncio.Semaphore
    users: int = 0
    running: int = 0


class CoalescingArchive:
    """See the module docstring. `inner` is the ArchiveGateway that does the calls."""

    def __init__(
        self,
        inner: ArchiveGateway,
        *,
        per_frame: int = DEFAULT_PER_FRAME,
        patience: float | None = 10.0,
    ) -> None:
        if per_frame < 1:
            raise ValueError("per_frame must be at least 1")
        self.inner = inner
        self.per_frame = per_frame
        self.patience = patience
        self._flights: SingleFlight[Any] = SingleFlight()
        self._subjects: dict[str, _Subject] = {}

    @property
    def in_flight(self) -> int:
        """Distinct lookups under way (each one call to the archive, or waiting for its turn)."""
        return len(self._flights)

    def running(self, subject: str) -> int:
        """Calls about `subject` (e.g. `frame:42`) holding one of its slots now."""
        state = self._subjects.get(subject)
        return 0 if state is None else state.running

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame:
        return await self._call(
            f"frame:{frame_id}",
            authorization,
            lambda: self.inner.get_frame(frame_id, authorization),
        )

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]:
        frames: list[Frame] = await self._call(
            f"basename:{basename}",
            authorization,
            lambda: self.inner.find_by_basename(basename, authorization),
        )
        return list(frames)  # each caller its own list

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        frames: list[Frame] = await self._call(
            f"request:{observing_request_id}",
            authorization,
            lambda: self.inner.list_observing_request_frames(
                observing_request_id, reduction_level, authorization
            ),
            detail=str(reduction_level),
        )
        return list(frames)

    async def download(self, frame: Frame, destination: Path) -> int:
        return await self.inner.download(frame, destination)

    async def check(self) -> None:
        await self.inner.check()

    async def _call(
        self,
        subject: str,
        authorization: str | None,
        work: Callable[[], Awaitable[T]],
        detail: str = "",
    ) -> T:
        # The key holds the whole Authorization: only the very same token shares an answer.
        # `repr` keeps the parts apart whatever they contain.
        key = repr((subject, detail, authorization))
        result: T = await self._flights.run(key, lambda: self._in_turn(subject, work))
        return result

    async def _in_turn(self, subject: str, work: Callable[[], Awaitable[T]]) -> T:
        state = self._subjects.get(subject)
        if state is None:
            state = self._subjects[subject] = _Subject(asyncio.Semaphore(self.per_frame))
        state.users += 1
        try:
            try:
                async with asyncio.timeout(self.patience):
                    await state.slots.acquire()
            except TimeoutError:
                raise ArchiveTimeout(
                    "The archive is slow to answer about this frame; retry later"
                ) from None
            state.running += 1
            try:
                return await work()
            finally:
                state.running -= 1
                state.slots.release()
        finally:
            state.users -= 1
            if state.users == 0 and self._subjects.get(subject) is state:
                del self._subjects[subject]
