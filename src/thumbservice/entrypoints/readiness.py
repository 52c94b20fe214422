"""Readiness: are the archive and the store reachable, can the render workers run a job?

Cheap, and cached for a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from thumbservice.domain.errors import ThumbnailError
from thumbservice.domain.ports import ArchiveGateway, ObjectStore

CHECK_TIMEOUT = 3.0

log = structlog.get_logger("thumbservice.readiness")


class Checked(Protocol):
    async def check(self) -> None:
        """Raise (a ThumbnailError, in plain words) while this part cannot do its work."""
        ...


@dataclass(frozen=True)
class ReadinessReport:
    archive: str
    store: str
    renderer: str = "ok"
    scratch: str = "ok"

    @property
    def ready(self) -> bool:
        return all(part == "ok" for part in (self.archive, self.store, self.renderer, self.scratch))

    def as_json(self) -> dict[str, str]:
        return {
            "status": "ready" if self.ready else "not ready",
            "archive": self.archive,
            "store": self.store,
            "renderer": self.renderer,
            "scratch": self.scratch,
        }


class Readiness:
    def __init__(
        self,
        archive: ArchiveGateway,
        store: ObjectStore,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        renderer: Checked | None = None,
        scratch: Checked | None = None,
    ) -> None:
        self.archive = archive
        self.store = store
        self.renderer = renderer
        self.scratch = scratch
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._last: tuple[float, ReadinessReport] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> ReadinessReport:
        async with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last[0] < self.cache_seconds:
                return self._last[1]
            archive, store, renderer, scratch = await asyncio.gather(
                _probe(self.archive.check),
                _probe(self.store.check),
                _probe(self.renderer.check if self.renderer is not None else _nothing),
                _probe(self.scratch.check if self.scratch is not None else _nothing),
            )
            report = ReadinessReport(archive, store, renderer, scratch)
            self._last = (self.clock(), report)
            return report


async def _nothing() -> None:
    return None


async def _probe(check: Callable[[], Awaitable[None]]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except ThumbnailError as err:  # adapters word their failures for the public
        return err.message
    except Exception as err:  # anything else is logged, not shown
        log.warning("readiness_check_failed", error=str(err) or type(err).__name__)
        return "unavailable"
    return "ok"
