"""The use case: a thumbnail for a caller, from the archive through the renderer to the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thumbservice.domain.concurrency import RenderAdmission, SingleFlight
from thumbservice.domain.errors import DeadlineExceeded, FrameNotFound, StoreUnavailable
from thumbservice.domain.frames import (
    COLOR_REDUCTION_LEVEL,
    FITS_SUFFIXES_LONGEST_FIRST,
    Frame,
    FrameRules,
    frame_ids,
)
from thumbservice.domain.leases import Lease, RenderLeases
from thumbservice.domain.pictures import picture_key
from thumbservice.domain.ports import (
    ArchiveGateway,
    FramePictures,
    ImageRenderer,
    NullTelemetry,
    ObjectStore,
    Telemetry,
    Workspace,
)
from thumbservice.domain.spec import DEFAULT_FORMAT, FrameRef, ThumbnailSpec, cache_key

ONE_WEEK = 7 * 24 * 3600
"""How long a thumbnail URL is good for, as the original service promised (and the longest an S3
SigV4 presigned URL may live)."""

STOP_WORK_SHARE = 0.8
"""Of the time given to `ThumbnailService.stop`, the share the work under way may use."""


@dataclass(frozen=True)
class Thumbnail:
    """The answer: a URL to the stored object, or the image itself."""

    key: str
    propid: str | None
    cache_hit: bool
    url: str | None = None
    data: bytes | None = None
    media_type: str = DEFAULT_FORMAT.media_type


@dataclass(frozen=True)
class _Rendered:
    """A fresh thumbnail, and its upload to the store: True once stored, False if refused."""

    data: bytes
    stored: asyncio.Future[bool]


class ThumbnailService:
    def __init__(
        self,
        archive: ArchiveGateway,
        renderer: ImageRenderer,
        store: ObjectStore,
        workspace: Workspace,
        rules: FrameRules,
        admission: RenderAdmission,
        *,
        telemetry: Telemetry | None = None,
        url_expiry: int = ONE_WEEK,
        deadline: float | None = None,
        leases: RenderLeases | None = None,
        pictures: FramePictures | None = None,
    ) -> None:
        self.archive = archive
        self.renderer = renderer
        self.store = store
        self.workspace = workspace
        self.rules = rules
        self.admission = admission
        self.telemetry = telemetry or NullTelemetry()
        self.url_expiry = url_expiry
        self.deadline = deadline
        # None: single flight within this process only (one replica, or LEASES=off).
        self.leases = leases
        # A flight lands on None when another replica made the thumbnail: it is in the store.
        self.flights: SingleFlight[_Rendered | None] = SingleFlight()
        self._uploads: dict[str, _Rendered] = {}
        # None: every thumbnail is rendered from the files. Otherwise one render (and one
        # download) per picture, whatever the view: the flights below are per picture.
        self.pictures = pictures
        self.picture_flights: SingleFlight[bytes] = SingleFlight()

    async def thumbnail(self, spec: ThumbnailSpec, authorization: str | None) -> Thumbnail:
        """The story of one request; the archive lookup is the permission check, every time."""
        try:
            async with asyncio.timeout(self.deadline):
                return await self._thumbnail(spec, authorization)
        except TimeoutError:
            raise DeadlineExceeded(
                f"The thumbnail took longer than the {self.deadline:g} s deadline"
            ) from None

    async def _thumbnail(self, spec: ThumbnailSpec, authorization: str | None) -> Thumbnail:
        frame = await self.find_frame(spec.frame, authorization)
        self.rules.check(frame, color=spec.color)
        sources = await self._sources(frame, spec, authorization)
        key = cache_key(frame_ids(sources), spec)

        uploading = self._uploads.get(key)
        if spec.image:
            # The image needs no store: one on its way there, or one the store has, or a render.
            reachable = True
            try:
                data = uploading.data if uploading else await self.store.get(key)
            except StoreUnavailable:
                self.telemetry.store_failed("get")
                data, reachable = None, False
            hit = data is not None
            self.telemetry.cache_lookup(hit=hit)
            if data is None:
                # A store that just failed to answer is not asked for a lease either.
                rendered = await self._render_once(key, sources, spec, leased=reachable)
                data = rendered.data if rendered is not None else await self._stored_image(key)
                if data is None:
                    raise StoreUnavailable(
                        "The thumbnail was made by another instance but could not be read "
                        "from the object store; retry later"
                    )
            return Thumbnail(
                key, frame.proposal_id, cache_hit=hit, data=data, media_type=spec.format.media_type
            )

        hit = uploading is None and await self._exists(key)
        self.telemetry.cache_lookup(hit=hit)
        if not hit:
            rendered = uploading or await self._render_once(key, sources, spec)
            if rendered is not None and not await asyncio.shield(rendered.stored):
                raise StoreUnavailable(
                    "The thumbnail was rendered but could not be stored; retry later "
                    "or ask for image=true"
                )
        url = await self._url(key)
        return Thumbnail(
            key, frame.proposal_id, cache_hit=hit, url=url, media_type=spec.format.media_type
        )

    async def look(self, spec: ThumbnailSpec, authorization: str | None) -> Thumbnail:
        """What a HEAD answers: the permission check and the cache lookup, never a render (a
        HEAD that rendered would let anyone start renders without taking their answers).
        With `image`, the cached image's bytes if there are any; else only whether it is cached.
        """
        try:
            async with asyncio.timeout(self.deadline):
                frame = await self.find_frame(spec.frame, authorization)
                self.rules.check(frame, color=spec.color)
                sources = await self._sources(frame, spec, authorization)
                key = cache_key(frame_ids(sources), spec)
                uploading = self._uploads.get(key)
                data = None
                if spec.image:
                    data = uploading.data if uploading else await self._stored_image(key)
                    hit = data is not None
                else:
                    hit = uploading is not None or await self._exists(key)
        except TimeoutError:
            raise DeadlineExceeded(
                f"The thumbnail took longer than the {self.deadline:g} s deadline"
            ) from None
        return Thumbnail(
            key, frame.proposal_id, cache_hit=hit, data=data, media_type=spec.format.media_type
        )

    async def drain(self, patience: float | None = None) -> int:
        """Wait, at most `patience` seconds, for the uploads still under way (at shutdown);
        return how many did not finish."""
        pending = [rendered.stored for rendered in self._uploads.values()]
        if not pending:
            return 0
        _, unfinished = await asyncio.wait(pending, timeout=patience)
        return len(unfinished)

    async def stop(self, patience: float | None = None) -> int:
        """At shutdown, before the store's clients close: let the work under way finish, for
        at most `patience` seconds, then cancel what is left. Return how much was cancelled.

        Work is the renders in flight (each then uploads and releases its lease) and the
        uploads of thumbnails already answered. The first `STOP_WORK_SHARE` of the patience
        goes to the work; the rest to what cancelled work does on its way out (a lease
        released, a scratch directory removed).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        working = None if patience is None else patience * STOP_WORK_SHARE
        left: list[asyncio.Future[Any]] = []
        while True:
            left = [*self.flights.pending(), *(r.stored for r in self._uploads.values())]
            left = [work for work in left if not work.done()]
            if not left:
                return 0
            timeout = None if working is None else working - (loop.time() - started)
            if timeout is not None and timeout <= 0:
                break
            # A render that lands starts its upload: look again once all that was seen is done.
            await asyncio.wait(left, timeout=timeout)
        for work in left:
            work.cancel()
        rest = None if patience is None else max(0.0, patience - (loop.time() - started))
        await asyncio.wait(left, timeout=rest)
        return len(left)

    async def find_frame(self, ref: FrameRef, authorization: str | None) -> Frame:
        return await find_frame(self.archive, ref, authorization)

    async def _sources(
        self, frame: Frame, spec: ThumbnailSpec, authorization: str | None
    ) -> tuple[Frame, ...]:
        if not spec.color:
            return (frame,)
        return await color_frames(self.archive, self.rules, frame, authorization)

    async def _render_once(
        self, key: str, sources: Sequence[Frame], spec: ThumbnailSpec, *, leased: bool = True
    ) -> _Rendered | None:
        """This process's one flight for the key: the rendered thumbnail, or None when another
        replica made it (it is in the store)."""
        return await self.flights.run(
            key,
            lambda: self._render_across_replicas(key, sources, spec, leased),
            on_join=self.telemetry.single_flight_joined,
        )

    async def _render_across_replicas(
        self, key: str, sources: Sequence[Frame], spec: ThumbnailSpec, leased: bool
    ) -> _Rendered | None:
        """One claim per key per process (inside the flight): render under the lease, or wait
        for the replica that holds it (domain/leases.py)."""
        # A full render queue refuses at once: before a lease is claimed or a file downloaded.
        self.admission.check()
        if self.leases is None or not leased:
            return await self._render_and_store(key, sources, spec, None)
        lease = await self.leases.acquire(key, lambda: self.store.exists(key), self.deadline)
        if lease is None:
            return None
        try:
            return await self._render_and_store(key, sources, spec, lease)
        except BaseException:
            await lease.release()
            raise

    async def _render_and_store(
        self, key: str, sources: Sequence[Frame], spec: ThumbnailSpec, lease: Lease | None
    ) -> _Rendered:
        data = await self._draw(sources, spec)
        # Callers of image=true answer now; the upload goes on in its own task, and callers of
        # the URL, or arriving while it is under way, wait for it rather than render again.
        upload = self._upload(key, data, spec.format.media_type, lease)
        rendered = _Rendered(data, asyncio.ensure_future(upload))
        self._uploads[key] = rendered
        rendered.stored.add_done_callback(lambda _: self._upload_done(key, rendered))
        return rendered

    async def _upload(self, key: str, data: bytes, media_type: str, lease: Lease | None) -> bool:
        try:
            await self.store.put(key, data, media_type)
            stored = True
        except StoreUnavailable:
            self.telemetry.store_failed("put")
            stored = False
        finally:
            # Only once the thumbnail is in the store: a waiter that finds the lease gone looks
            # for the thumbnail, and claims again if it is not there.
            if lease is not None:
                await lease.release()
        return stored

    async def _draw(self, sources: Sequence[Frame], spec: ThumbnailSpec) -> bytes:
        """The thumbnail's bytes: drawn from the frame's kept picture when the renderer holds
        it (no download), else rendered from the files, once per picture for every view asked
        for meanwhile; a view whose picture could not be kept is rendered on its own."""
        if self.pictures is None:
            return await self._render_files(sources, spec, None)
        picture = picture_key(sources, spec)
        data = await self._draw_kept(picture, spec)
        if data is not None:
            return data
        led = False

        async def first() -> bytes:
            nonlocal led
            led = True
            return await self._render_files(sources, spec, picture)

        data = await self.picture_flights.run(
            picture, first, on_join=self.telemetry.single_flight_joined
        )
        if led:
            return data
        kept = await self._draw_kept(picture, spec)
        return kept if kept is not None else await self._render_files(sources, spec, picture)

    async def _draw_kept(self, picture: str, spec: ThumbnailSpec) -> bytes | None:
        assert self.pictures is not None
        if not self.pictures.holds(picture):
            return None
        async with self.admission.admit(), self.admission.render_slot():
            data = await self.pictures.draw(picture, spec)
        if data is not None:
            self.telemetry.frame_cache_lookup(hit=True)
        return data

    async def _render_files(
        self, sources: Sequence[Frame], spec: ThumbnailSpec, picture: str | None
    ) -> bytes:
        """Download the files and render them; with `picture`, keep the picture as well."""
        async with self.workspace.directory() as workdir:
            async with self.admission.download_slot():
                paths = await download_frames(self.archive, self.telemetry, sources, workdir)
            async with self.admission.admit(), self.admission.render_slot():
                started = time.perf_counter()
                if picture is None or self.pictures is None:
                    data = await self.renderer.render(paths, spec, workdir)
                else:
                    self.telemetry.frame_cache_lookup(hit=False)
                    data = await self.pictures.render_and_keep(picture, paths, spec, workdir)
                self.telemetry.rendered(time.perf_counter() - started, spec.color)
        return data

    def _upload_done(self, key: str, rendered: _Rendered) -> None:
        if self._uploads.get(key) is rendered:
            del self._uploads[key]

    async def _stored_image(self, key: str) -> bytes | None:
        try:
            return await self.store.get(key)
        except StoreUnavailable:
            # The image can still be rendered and answered without the store.
            self.telemetry.store_failed("get")
            return None

    async def _exists(self, key: str) -> bool:
        try:
            return await self.store.exists(key)
        except StoreUnavailable:
            self.telemetry.store_failed("exists")
            raise

    async def _url(self, key: str) -> str:
        try:
            return await self.store.url_for(key, self.url_expiry)
        except StoreUnavailable:
            self.telemetry.store_failed("url")
            raise


async def find_frame(archive: ArchiveGateway, ref: FrameRef, authorization: str | None) -> Frame:
    """The frame by id or basename, as the archive shows it to this caller (the permission
    check); a basename must name exactly one frame."""
    if ref.frame_id is not None:
        return await archive.get_frame(ref.frame_id, authorization)
    assert ref.basename is not None
    found = await archive.find_by_basename(ref.basename, authorization)
    if len(found) != 1:
        raise FrameNotFound(
            f"Frame {ref.basename} not found"
            if not found
            else f"Basename {ref.basename} matches {len(found)} frames"
        )
    return found[0]


async def color_frames(
    archive: ArchiveGateway, rules: FrameRules, frame: Frame, authorization: str | None
) -> tuple[Frame, Frame, Frame]:
    """The red, visual and blue frames of the frame's observing request, as this caller may
    see them (checked as a colour source by the caller)."""
    assert frame.observing_request_id is not None
    frames = await archive.list_observing_request_frames(
        frame.observing_request_id, COLOR_REDUCTION_LEVEL, authorization
    )
    return rules.pick_color_frames(frames)


async def download_frames(
    archive: ArchiveGateway, telemetry: Telemetry, frames: Sequence[Frame], workdir: Path
) -> list[Path]:
    """Download the frames side by side into `workdir`, as frame-0, frame-1, ... with each
    frame's suffix, and return their paths in the frames' order. If one download fails or the
    caller is cancelled, the others are cancelled and waited for before the error goes on."""
    paths = [workdir / f"frame-{i}{frame_suffix(f)}" for i, f in enumerate(frames)]
    tasks = [
        asyncio.ensure_future(archive.download(frame, path))
        for frame, path in zip(frames, paths, strict=True)
    ]
    try:
        sizes = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for size in sizes:
        telemetry.downloaded(size)
    return paths


def frame_suffix(frame: Frame) -> str:
    """The file suffix a downloaded frame is written with."""
    return _suffix(frame)


def _suffix(frame: Frame) -> str:
    # Never trust the archive's filename as a path: only its extension is used.
    name = frame.filename or ""
    return next((s for s in FITS_SUFFIXES_LONGEST_FIRST if name.endswith(s)), ".fits")
