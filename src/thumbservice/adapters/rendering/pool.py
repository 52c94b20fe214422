"""Rendering in a process pool: it is CPU-bound and must never run on the event loop."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import structlog

from thumbservice.adapters.rendering import worker as render_worker
from thumbservice.adapters.rendering.framecache import FrameCache
from thumbservice.adapters.rendering.memory import OutOfMemory
from thumbservice.adapters.rendering.views import Keep
from thumbservice.domain.errors import FrameTooLarge, RenderFailed, ThumbnailError
from thumbservice.domain.spec import ThumbnailSpec

log = structlog.get_logger("thumbservice.renderer")

T = TypeVar("T")


class ProcessPoolRenderer:
    """ImageRenderer running `render_worker.render` in a pool of `workers` processes.

    The pool is started with the spawn method (a fork of a process running an event loop and
    open sockets is unsafe). Each worker runs `renderer` (`fast` or `fits2image`) under a data
    limit of `memory_limit` bytes (None: none). A job that hits the limit answers FrameTooLarge
    and the pool is renewed, the jobs still running finishing in the old one; a worker that dies
    (killed) breaks the pool, which is then replaced, and its job answers RenderFailed.

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
        self.frame_cache = frame_cache if frame_cache is not None and frame_cache.enabled else None
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=render_worker.init_worker,
                initargs=self.worker_settings,
            )

    async def warm(self) -> None:
        """Start every worker now rather than on the first request."""
        self.start()
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, render_worker.warm_up, self.renderer)
                for _ in range(self.workers)
            )
        )

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
            self._replace(pool)
            raise RenderFailed("A render worker died while rendering; retry the request") from None
        except OutOfMemory as err:
            # The worker's heap may be left fragmented near its limit: renew the pool.
            self._renew(pool)
            raise FrameTooLarge(err.message) from None
        except ThumbnailError:
            raise
        except Exception as err:  # the pool itself failed (could not start a process, ...)
            log.error("render_failed", error=f"{type(err).__name__}: {err}")
            raise RenderFailed("The renderer failed; retry the request") from None
        if isinstance(outcome, render_worker.RenderOutcome) and outcome.aligned is False:
            log.warning("color_alignment_fallback", reason=outcome.note)
        return outcome

    def _replace(self, broken: ProcessPoolExecutor, kill: bool = False) -> None:
        if self._pool is broken:
            log.error("render_pool_replaced", workers=self.workers, stuck=kill)
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
