"""Rendering in a process pool: it is CPU-bound and must never run on the event loop."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

import structlog

from thumbservice.adapters.rendering import worker as render_worker
from thumbservice.adapters.rendering.memory import OutOfMemory
from thumbservice.domain.errors import FrameTooLarge, RenderFailed, ThumbnailError
from thumbservice.domain.iiif import ImageRequest, RenderedView
from thumbservice.domain.spec import ThumbnailSpec

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")

log = structlog.get_logger("thumbservice.renderer")


class ProcessPoolRenderer:
    """ImageRenderer running `render_worker.render` in a pool of `workers` processes.

    The pool is started with the spawn method (a fork of a process running an event loop and
    open sockets is unsafe). Each worker runs `renderer` (`fast` or `fits2image`) under a data
    limit of `memory_limit` bytes (None: none). A job that hits the limit answers FrameTooLarge
    and the pool is renewed, the jobs still running finishing in the old one; a worker that dies
    (killed) breaks the pool, which is then replaced, and its job answers RenderFailed.
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
        self.start()
        assert self._pool is not None
        job = render_worker.RenderJob(
            sources=tuple(str(p) for p in sources),
            workdir=str(workdir),
            spec=spec,
            max_pixels=self.max_pixels,
            align=self.align_color,
            renderer=self.renderer,
        )
        outcome = await self._run(render_worker.render, job)
        if outcome.aligned is False:
            log.warning("color_alignment_fallback", reason=outcome.note)
        return outcome.data

    async def render_view(
        self,
        sources: Sequence[Path],
        spec: ThumbnailSpec,
        request: ImageRequest | None,
        workdir: Path,
    ) -> RenderedView:
        """An IIIF view cut from the frame's full picture (`views.full_picture`), in a worker."""
        job = render_worker.ViewJob(
            sources=tuple(str(p) for p in sources),
            workdir=str(workdir),
            spec=spec,
            request=request,
            max_pixels=self.max_pixels,
            align=self.align_color,
        )
        return await self._run(render_worker.render_view, job)

    async def _run(self, function: Callable[[Job], Outcome], job: Job) -> Outcome:
        """One job in the pool, its failures as domain errors, a stuck or dead pool replaced."""
        self.start()
        assert self._pool is not None
        pool = self._pool
        try:
            async with asyncio.timeout(self.render_timeout):
                return await asyncio.get_running_loop().run_in_executor(pool, function, job)
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
