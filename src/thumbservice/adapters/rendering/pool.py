"""Rendering in a process pool: it is CPU-bound and must never run on the event loop."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import structlog

from thumbservice.adapters.rendering import worker as render_worker
from thumbservice.adapters.rendering.engine.memory import OutOfMemory
from thumbservice.adapters.rendering.framecache import FrameCache
from thumbservice.adapters.rendering.views import Keep
from thumbservice.domain.errors import FrameTooLarge, RenderFailed, ThumbnailError
from thumbservice.domain.iiif import ImageRequest, RenderedView
from thumbservice.domain.spec import ThumbnailSpec

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")

log = structlog.get_logger("thumbservice.renderer")

UNHEALTHY_REPLACEMENTS = 3
"""Pools replaced (a worker died or overran RENDER_TIMEOUT) within UNHEALTHY_WINDOW: not ready."""
UNHEALTHY_WINDOW = 60.0
PROBE_PATIENCE = 2.0
"""Seconds a readiness check waits for workers being tried; the try itself goes on."""

WORKERS_STOP_AT_START = "The render workers stop as they start; see the log"
WORKERS_CANNOT_START = "The render workers cannot be started; see the log"

T = TypeVar("T")


class ProcessPoolRenderer:
    """ImageRenderer running `render_worker.render` in a pool of `workers` processes.

    The pool is started with the spawn method (a fork of a process running an event loop and
    open sockets is unsafe). Each worker runs `renderer` (`fast` or `fits2image`) under a data
    limit of `memory_limit` bytes (None: none). A job that hits the limit answers FrameTooLarge
    and the pool is renewed, the jobs still running finishing in the old one; a worker that dies
    (killed) breaks the pool, which is then replaced, and its job answers RenderFailed.

    `check()` is its part of readiness: it fails while the workers cannot run a job (they die as
    they start, or cannot be started: it then tries fresh workers itself, since a replica out of
    rotation gets no job that would) and while the pool has been replaced UNHEALTHY_REPLACEMENTS
    times within UNHEALTHY_WINDOW seconds.

    With a `frame_cache` it is also the FramePictures port: a render keeps the frame's
    full-resolution picture there (`render_and_keep`), and further views are drawn from it
    (`draw`) without the FITS files. Every job logs a `render` line saying which it was.
    """

    def __init__(
        self,
        workers: int,
        *,
        max_pixels: int,
        align_color: bool = True,
        render_timeout: float | None = None,
        log_level: str = "INFO",
        log_format: str = "json",
        renderer: str = "fast",
        memory_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        frame_cache: FrameCache | None = None,
    ) -> None:
        if renderer not in render_worker.RENDERERS:
            raise ValueError(f"unknown renderer {renderer!r}")
        self.workers = workers
        self.max_pixels = max_pixels
        self.align_color = align_color
        self.render_timeout = render_timeout
        self.renderer = renderer
        self.memory_limit = memory_limit
        self.worker_settings = (log_level, log_format, renderer, memory_limit)
        self.clock = clock
        self.frame_cache = frame_cache if frame_cache is not None and frame_cache.enabled else None
        self._pool: ProcessPoolExecutor | None = None
        self._proven = False  # a job has run to its end in the current pool
        self._failing: str | None = None  # why the workers cannot run a job, while they cannot
        self._replaced: deque[float] = deque()  # when pools were replaced, oldest first
        self._probe: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._pool is None:
            self._proven = False
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=render_worker.init_worker,
                # The server's pid, for a worker to tell whether the server is still its parent.
                initargs=(*self.worker_settings, os.getpid()),
            )

    async def warm(self) -> None:
        """Start every worker now rather than on the first request.

        Workers that cannot start are logged and remembered for readiness, not raised.
        """
        self.start()
        pool = self._pool
        assert pool is not None
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(
                *(
                    loop.run_in_executor(pool, render_worker.warm_up, self.renderer)
                    for _ in range(self.workers)
                )
            )
        except BrokenProcessPool:
            self._cannot_run(pool, WORKERS_STOP_AT_START)
            self._replace(pool)
        except Exception as err:  # could not start a process, ...
            log.error("render_workers_not_started", error=f"{type(err).__name__}: {err}")
            self._cannot_run(pool, WORKERS_CANNOT_START)
        else:
            self._ran_a_job(pool)

    async def check(self) -> None:
        """Raise RenderFailed, in plain words, while the workers cannot be relied on."""
        if self._failing is not None:
            if self._probe is None or self._probe.done():
                self._probe = asyncio.create_task(self.warm())
            await asyncio.wait({self._probe}, timeout=PROBE_PATIENCE)
            if self._failing is not None:
                raise RenderFailed(self._failing)
        now = self.clock()
        while self._replaced and now - self._replaced[0] > UNHEALTHY_WINDOW:
            self._replaced.popleft()
        if len(self._replaced) >= UNHEALTHY_REPLACEMENTS:
            raise RenderFailed(
                f"The render workers were replaced {len(self._replaced)} times in the last "
                f"{UNHEALTHY_WINDOW:g} s (they died or overran the render timeout); see the log"
            )

    def _ran_a_job(self, pool: ProcessPoolExecutor) -> None:
        if pool is self._pool:
            self._proven = True
            if self._failing is not None:
                log.info("render_workers_recovered")
            self._failing = None

    def _cannot_run(self, pool: ProcessPoolExecutor, reason: str) -> None:
        if pool is self._pool and self._failing is None:
            log.error("render_workers_failing", reason=reason)
        self._failing = reason

    async def aclose(self) -> None:
        """Stop trying workers for readiness, then close the pool (off the event loop)."""
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def render(self, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path) -> bytes:
        started = time.perf_counter()
        outcome = await self._run(render_worker.render, self._job(sources, spec, workdir))
        self._log("fits", spec, started)
        return outcome.data

    def holds(self, key: str) -> bool:
        """Whether the frame cache holds the picture `key` (then a view needs no download)."""
        return self.frame_cache is not None and key in self.frame_cache

    async def draw(self, key: str, spec: ThumbnailSpec) -> bytes | None:
        """The view of `spec` from the kept picture `key`; None when it is not kept (or its
        entry turned out unreadable, and is forgotten)."""
        cache = self.frame_cache
        if cache is None or key not in cache:
            return None
        started = time.perf_counter()
        job = render_worker.ViewJob(str(cache.directory), key, spec)
        data = await self._run(render_worker.draw, job)
        if data is None:
            cache.dropped(key)
            return None
        cache.used(key)
        self._log("frame_cache", spec, started)
        return data

    async def render_and_keep(
        self, key: str, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path
    ) -> bytes:
        """A render from the FITS files that keeps the full-resolution picture under `key`."""
        cache = self.frame_cache
        if cache is None:
            return await self.render(sources, spec, workdir)
        started = time.perf_counter()
        keep = Keep(str(cache.directory), key, cache.max_bytes)
        job = self._job(sources, spec, workdir, keep)
        outcome = await self._run(render_worker.render, job)
        cache.added(key, outcome.kept_bytes)
        self._log("fits", spec, started, kept_bytes=outcome.kept_bytes)
        return outcome.data

    def _job(
        self,
        sources: Sequence[Path],
        spec: ThumbnailSpec,
        workdir: Path,
        keep: Keep | None = None,
    ) -> render_worker.RenderJob:
        return render_worker.RenderJob(
            sources=tuple(str(p) for p in sources),
            workdir=str(workdir),
            spec=spec,
            max_pixels=self.max_pixels,
            align=self.align_color,
            renderer=self.renderer,
            keep=keep,
        )

    def _log(self, drawn_from: str, spec: ThumbnailSpec, started: float, **extra: Any) -> None:
        log.info(
            "render",
            drawn_from=drawn_from,
            width=spec.width,
            height=spec.height,
            format=spec.format.value,
            color=spec.color,
            seconds=round(time.perf_counter() - started, 4),
            **extra,
        )

    async def render_view(
        self,
        sources: Sequence[Path],
        spec: ThumbnailSpec,
        request: ImageRequest | None,
        workdir: Path,
        picture: str | None = None,
    ) -> RenderedView:
        """An IIIF view cut from the frame's full picture (`regions.full_picture`), in a
        worker: with a frame cache and the picture's key, the cache's entry (made first if it
        is not kept), else a picture rendered for this view alone."""
        cache = self.frame_cache
        keep = None
        if cache is not None and picture is not None:
            keep = Keep(str(cache.directory), picture, cache.max_bytes)
        job = render_worker.RegionJob(
            sources=tuple(str(p) for p in sources),
            workdir=str(workdir),
            spec=spec,
            request=request,
            max_pixels=self.max_pixels,
            align=self.align_color,
            keep=keep,
            renderer=self.renderer,
        )
        started = time.perf_counter()
        view = await self._run(render_worker.render_view, job)
        if cache is not None and picture is not None:
            if view.kept_bytes:
                cache.added(picture, view.kept_bytes)
            elif not view.width:  # the entry is gone from the disk: the index forgets it too
                cache.dropped(picture)
            elif picture in cache:
                cache.used(picture)
        log.debug(
            "render_view",
            drawn_from="fits" if sources else "frame_cache",
            seconds=round(time.perf_counter() - started, 4),
        )
        return view

    async def _run(self, function: Callable[[Any], T], job: Any) -> T:
        self.start()
        assert self._pool is not None
        pool = self._pool
        try:
            async with asyncio.timeout(self.render_timeout):
                outcome = await asyncio.get_running_loop().run_in_executor(pool, function, job)
        except TimeoutError:
            # A worker stuck on one frame would hold its slot forever: stop the pool's workers
            # (the one running this job cannot be told apart) and start afresh.
            self._replace(pool, kill=True)
            raise RenderFailed(
                f"The render took longer than {self.render_timeout:g} s and was stopped"
            ) from None
        except BrokenProcessPool:
            if pool is self._pool and not self._proven:  # no job has ever ended in this pool
                self._cannot_run(pool, WORKERS_STOP_AT_START)
            self._replace(pool)
            raise RenderFailed("A render worker died while rendering; retry the request") from None
        except OutOfMemory as err:
            # The worker's heap may be left fragmented near its limit: renew the pool.
            self._ran_a_job(pool)
            self._renew(pool)
            raise FrameTooLarge(err.message) from None
        except ThumbnailError:
            self._ran_a_job(pool)
            raise
        except Exception as err:  # the pool itself failed (could not start a process, ...)
            log.error("render_failed", error=f"{type(err).__name__}: {err}")
            self._cannot_run(pool, WORKERS_CANNOT_START)
            raise RenderFailed("The renderer failed; retry the request") from None
        self._ran_a_job(pool)
        if isinstance(outcome, render_worker.RenderOutcome) and outcome.aligned is False:
            log.warning("color_alignment_fallback", reason=outcome.note)
        return outcome

    def _replace(self, broken: ProcessPoolExecutor, kill: bool = False) -> None:
        if self._pool is broken:
            log.error("render_pool_replaced", workers=self.workers, stuck=kill)
            if self._failing is None:  # workers that cannot start are a reason of their own
                self._replaced.append(self.clock())
            if kill:
                for process in list(getattr(broken, "_processes", {}).values()):
                    process.kill()
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.start()

    def _renew(self, old: ProcessPoolExecutor) -> None:
        """Fresh workers for the next jobs; the old pool's running jobs finish, then it exits."""
        if self._pool is old:
            log.warning("render_pool_renewed", reason="a worker reached its memory limit")
            self._pool = None
            self.start()
            old.shutdown(wait=False, cancel_futures=False)
