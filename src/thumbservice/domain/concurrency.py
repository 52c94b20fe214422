"""Sharing and bounding work: single-flight per cache key, and admission of renders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from thumbservice.domain.errors import DEFAULT_RETRY_AFTER, Overloaded

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Concurrent calls for the same key share one execution of the work.

    The work runs in its own task, shielded from any one caller: a caller that goes away (client
    disconnect, deadline) does not cancel it for the others, and what it produces is still kept.
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def pending(self) -> list[asyncio.Future[T]]:
        """The flights under way."""
        return list(self._flights.values())

    async def run(
        self,
        key: str,
        work: Callable[[], Awaitable[T]],
        on_join: Callable[[], None] | None = None,
    ) -> T:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(work())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        elif on_join is not None:
            on_join()
        return await asyncio.shield(flight)

    def _land(self, key: str, flight: asyncio.Future[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            # Mark the exception as seen: every caller that was waiting has re-raised it already.
            flight.exception()


DEFAULT_MAX_DOWNLOADS = 32


class RenderAdmission:
    """Bounds the work the service takes on.

    At most `workers` renders run at once; at most `queue_depth` more jobs are admitted to wait
    for a worker. Beyond that a new job is refused at once with Overloaded, so a burst of cold
    requests gets a quick 503 instead of an ever-growing queue.

    Downloads are counted apart, at most `max_downloads` at once: a job is admitted to the
    render queue once its files are here, so slow downloads (an archive's file store that
    trickles) never keep idle workers from rendering what has arrived. `check()` refuses a new
    job before it downloads anything, or claims a lease, if the render queue is full already.
    """

    def __init__(
        self,
        workers: int,
        queue_depth: int,
        retry_after: int = DEFAULT_RETRY_AFTER,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
    ) -> None:
        if workers < 1 or queue_depth < 0 or max_downloads < 1:
            raise ValueError("workers and max_downloads must be >= 1 and queue_depth >= 0")
        self.workers = workers
        self.queue_depth = queue_depth
        self.retry_after = retry_after
        self.max_downloads = max_downloads
        self._slots = asyncio.Semaphore(workers)
        self._admitted = 0
        self._rendering = 0
        self._queued = 0
        self._downloading = 0

    @property
    def downloading(self) -> int:
        return self._downloading

    @property
    def admitted(self) -> int:
        return self._admitted

    @property
    def rendering(self) -> int:
        return self._rendering

    @property
    def waiting(self) -> int:
        """Jobs waiting for a render worker: thumbnails admitted to the queue and deep-zoom
        views (which have a queue of their own but the same workers)."""
        return self._queued

    def check(self) -> None:
        """Raise Overloaded now if a job would not be admitted to the render queue."""
        if self._admitted >= self.workers + self.queue_depth:
            raise Overloaded(
                f"The service is busy rendering ({self._rendering} running, "
                f"{self.waiting} waiting); retry in a few seconds",
                retry_after=self.retry_after,
            )

    @asynccontextmanager
    async def download_slot(self) -> AsyncIterator[None]:
        """One job's downloads; Overloaded at once if `max_downloads` are under way."""
        if self._downloading >= self.max_downloads:
            raise Overloaded(
                f"The service is busy downloading frames ({self._downloading} under way); "
                "retry in a few seconds",
                retry_after=self.retry_after,
            )
        self._downloading += 1
        try:
            yield
        finally:
            self._downloading -= 1

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        self.check()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    @asynccontextmanager
    async def render_slot(self) -> AsyncIterator[None]:
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        try:
            self._rendering += 1
            yield
        finally:
            self._rendering -= 1
            self._slots.release()
