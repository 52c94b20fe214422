"""The deep-zoom use case: IIIF info and views of a frame, for a caller.

Every request is a permission check (the archive lookup, which the composition root may let
reuse an answer for the same caller for a few seconds). The frame's files are downloaded once
per replica however many views of it are asked for at once: the first request starts the
download in a scratch directory of its own, the others wait for it, and the files stay while
any request uses them and `linger` seconds after the last. Each view is then drawn by the
renderer from the frame's full-resolution picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.errors import DeadlineExceeded, Overloaded, ThumbnailError
from thumbservice.domain.frames import Frame, FrameRules, frame_ids
from thumbservice.domain.iiif import Identifier, ImageRequest, RenderedView
from thumbservice.domain.pictures import content_identity, picture_key
from thumbservice.domain.ports import (
    ArchiveGateway,
    FramePictures,
    NullTelemetry,
    Telemetry,
    ViewRenderer,
    Workspace,
)
from thumbservice.domain.service import color_frames, download_frames, find_frame
from thumbservice.domain.spec import RENDER_VERSION

DEFAULT_LINGER = 10.0
"""Seconds a frame's files are kept after the last request that used them: a viewer's next
burst (a zoom) usually comes within that."""

DEFAULT_QUEUE_DEPTH = 64
"""Views admitted at once (drawing or waiting for a worker) before a 503."""

SIZES_KEPT = 4096
"""Picture sizes remembered (a few dozen bytes each): info.json needs no render once known."""


@dataclass(frozen=True)
class FrameSummary:
    """What the viewer shows of a frame."""

    basename: str | None
    proposal_id: str | None
    color_available: bool


@dataclass(frozen=True)
class Picture:
    """A frame's picture for an identifier: its size, and whether it is drawn in colour."""

    width: int
    height: int
    color: bool


@dataclass(frozen=True)
class View:
    """An encoded view and its entity tag (the same request of the same frames: the same
    tag, so a revalidation needs no render); no data when the caller has it already."""

    data: bytes | None
    etag: str


@dataclass
class _Held:
    """A frame's files in one scratch directory, for as long as some request uses them."""

    ready: asyncio.Future[tuple[Path, list[Path]]]
    release: asyncio.Event = field(default_factory=asyncio.Event)
    users: int = 0
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None


class DeepZoomService:
    def __init__(
        self,
        archive: ArchiveGateway,
        renderer: ViewRenderer,
        workspace: Workspace,
        rules: FrameRules,
        admission: RenderAdmission,
        *,
        telemetry: Telemetry | None = None,
        deadline: float | None = None,
        linger: float = DEFAULT_LINGER,
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
        pictures: FramePictures | None = None,
    ) -> None:
        self.archive = archive
        self.pictures = pictures
        """The renderer's kept pictures, when it keeps them: a view of a kept picture needs no
        download, and a picture made for a view serves the thumbnails too."""
        self.renderer = renderer
        self.workspace = workspace
        self.rules = rules
        self.admission = admission
        self.telemetry = telemetry or NullTelemetry()
        self.deadline = deadline
        self.linger = linger
        self.queue_depth = queue_depth
        self._waiting = 0
        self._held: dict[tuple[int, ...], _Held] = {}
        self._making: dict[str, asyncio.Future[None]] = {}
        self.waiting_for_pictures = 0
        """Views waiting for a picture another view is making (`_making`)."""
        """Pictures being made from the files by a view, by key: the other views of the same
        picture wait for it and are then cut from it, so a frame is decoded once however many
        views ask for it at once."""
        self._sizes: OrderedDict[tuple[tuple[int, ...], str], tuple[int, int]] = OrderedDict()
        self.downloads = 0
        """Frame sets downloaded since start (each one counts once, however many frames)."""

    async def picture(self, identifier: Identifier, authorization: str | None) -> Picture:
        """The size of the identifier's picture (info.json), after the permission check."""
        async with self._deadline():
            sources = await self._sources(identifier, authorization)
            size = self._sizes.get(self._size_key(sources, identifier))
            if size is None:
                rendered = await self._render(sources, identifier, None)
                size = (rendered.width, rendered.height)
            return Picture(*size, color=identifier.spec.color)

    async def view(
        self,
        identifier: Identifier,
        request: ImageRequest,
        authorization: str | None,
        if_none_match: frozenset[str] = frozenset(),
    ) -> View:
        """The view; without data when `if_none_match` holds its tag (a 304, after the
        permission check)."""
        async with self._deadline():
            sources = await self._sources(identifier, authorization)
            etag = _etag(sources, identifier, request)
            if etag in if_none_match:
                return View(None, etag)
            rendered = await self._render(sources, identifier, request)
            return View(rendered.data, etag)

    async def look(
        self, identifier: Identifier, request: ImageRequest | None, authorization: str | None
    ) -> str | None:
        """What a HEAD answers: the permission check, and the view's tag (None for info.json);
        never a download or a render (a HEAD that rendered would let anyone start renders
        without taking their answers)."""
        async with self._deadline():
            sources = await self._sources(identifier, authorization)
            return None if request is None else _etag(sources, identifier, request)

    async def summary(self, identifier: Identifier, authorization: str | None) -> FrameSummary:
        """The frame's names, and whether a colour picture of it can be drawn."""
        async with self._deadline():
            frame = await find_frame(self.archive, identifier.frame, authorization)
            self.rules.check(frame, color=False)
            color = False
            try:
                await self._color_sources(frame, authorization)
                color = True
            except ThumbnailError:
                pass
            return FrameSummary(frame.basename, frame.proposal_id, color)

    async def close(self) -> None:
        """Remove every frame's files (at shutdown); a download still under way is cut short
        rather than waited for."""
        held = list(self._held.values())
        self._held.clear()
        for entry in held:
            entry.release.set()
            if entry.task is not None and not entry.ready.done():
                entry.task.cancel()
        await asyncio.gather(*(e.task for e in held if e.task), return_exceptions=True)

    # ---- the story's steps ---------------------------------------------------------------

    async def _sources(self, identifier: Identifier, authorization: str | None) -> list[Frame]:
        frame = await find_frame(self.archive, identifier.frame, authorization)
        color = identifier.spec.color
        self.rules.check(frame, color=color)
        if not color:
            return [frame]
        return list(await self._color_sources(frame, authorization))

    async def _color_sources(
        self, frame: Frame, authorization: str | None
    ) -> tuple[Frame, Frame, Frame]:
        self.rules.check(frame, color=True)
        return await color_frames(self.archive, self.rules, frame, authorization)

    async def _render(
        self, sources: list[Frame], identifier: Identifier, request: ImageRequest | None
    ) -> RenderedView:
        picture = None if self.pictures is None else picture_key(sources, identifier.spec)
        making = None if picture is None else self._making.get(picture)
        if making is not None:
            # Another view is making this picture: wait for it (whatever its outcome; this
            # view's own deadline still holds), then take the picture it kept.
            self.waiting_for_pictures += 1
            try:
                await asyncio.wait([making])
            finally:
                self.waiting_for_pictures -= 1
        if picture is not None and self.pictures is not None and self.pictures.holds(picture):
            async with self._admit(), self.admission.render_slot():
                kept = await self.renderer.render_view(
                    [], identifier.spec, request, Path(), picture=picture
                )
            if kept.width:  # 0: the picture was let go meanwhile; render it from the files
                self.telemetry.frame_cache_lookup(hit=True)
                self._remember(self._size_key(sources, identifier), (kept.width, kept.height))
                return kept
        first = picture is not None and picture not in self._making
        if first:
            assert picture is not None
            self._making[picture] = asyncio.get_running_loop().create_future()
        try:
            async with (
                self._admit(),
                self._files(sources) as (workdir, paths),
                self.admission.render_slot(),
            ):
                started = time.perf_counter()
                if picture is not None:
                    self.telemetry.frame_cache_lookup(hit=False)
                rendered = await self.renderer.render_view(
                    paths, identifier.spec, request, workdir, picture=picture
                )
                self.telemetry.rendered(time.perf_counter() - started, identifier.spec.color)
        finally:
            if first:
                assert picture is not None
                self._making.pop(picture).set_result(None)
        self._remember(self._size_key(sources, identifier), (rendered.width, rendered.height))
        return rendered

    @contextlib.asynccontextmanager
    async def _files(self, sources: Sequence[Frame]) -> AsyncIterator[tuple[Path, list[Path]]]:
        """The frames' files, downloaded by the first request that needs them (one flight per
        frame set), kept while used and `linger` seconds after."""
        key = frame_ids(sources)
        held = self._held.get(key)
        if held is None:
            held = _Held(asyncio.get_running_loop().create_future())
            self._held[key] = held
            held.task = asyncio.ensure_future(self._hold(key, list(sources), held))
        held.users += 1
        if held.timer is not None:
            held.timer.cancel()
            held.timer = None
        try:
            yield await asyncio.shield(held.ready)
        finally:
            held.users -= 1
            if held.users == 0 and not held.release.is_set():
                held.timer = asyncio.get_running_loop().call_later(
                    self.linger, self._let_go, key, held
                )

    def _let_go(self, key: tuple[int, ...], held: _Held) -> None:
        if held.users == 0:
            if self._held.get(key) is held:
                del self._held[key]
            held.release.set()

    async def _hold(self, key: tuple[int, ...], frames: list[Frame], held: _Held) -> None:
        try:
            async with self.workspace.directory() as workdir:
                async with self.admission.download_slot():  # MAX_DOWNLOADS, as for thumbnails
                    paths = await download_frames(self.archive, self.telemetry, frames, workdir)
                self.downloads += 1
                held.ready.set_result((workdir, paths))
                await held.release.wait()
        except BaseException as err:
            if self._held.get(key) is held:
                del self._held[key]
            if not held.ready.done():
                held.ready.set_exception(err)
                held.ready.exception()  # seen: every waiter re-raises it
            if not isinstance(err, Exception):
                raise

    @contextlib.asynccontextmanager
    async def _admit(self) -> AsyncIterator[None]:
        """Views wait for the render workers the thumbnails use, in a queue of their own: a
        viewer asks for dozens at once, each of them small once the picture is drawn."""
        if self._waiting >= self.queue_depth:
            raise Overloaded(
                f"The service is busy drawing views ({self._waiting} waiting); retry in a few "
                "seconds",
                retry_after=self.admission.retry_after,
            )
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.deadline):
                yield
        except TimeoutError:
            raise DeadlineExceeded(
                f"The image took longer than the {self.deadline:g} s deadline"
            ) from None

    def _size_key(
        self, sources: Sequence[Frame], identifier: Identifier
    ) -> tuple[tuple[int, ...], str]:
        return frame_ids(sources), identifier.canonical.partition(";")[2]

    def _remember(self, key: tuple[tuple[int, ...], str], size: tuple[int, int]) -> None:
        self._sizes[key] = size
        self._sizes.move_to_end(key)
        while len(self._sizes) > SIZES_KEPT:
            self._sizes.popitem(last=False)


def _etag(sources: Sequence[Frame], identifier: Identifier, request: ImageRequest) -> str:
    """The view's tag: the files' contents (`content_identity`: a frame reduced again is a new
    tag), the options and the request."""
    files = ",".join(content_identity(frame) for frame in sources)
    canonical = f"{files}|{identifier.canonical.partition(';')[2]}|{request!r}|v={RENDER_VERSION}"
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
