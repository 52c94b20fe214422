"""The deep-zoom use case with fakes of the ports: permissions, one download per frame however
many views at once, sizes remembered, revalidation without a render."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakes import FakeArchive, FakeWorkspace, RecordingTelemetry, record
from tests.support.waiting import until
from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.deepzoom import DeepZoomService
from thumbservice.domain.errors import FrameNotFound, InvalidParameter, Overloaded
from thumbservice.domain.frames import FrameRules
from thumbservice.domain.iiif import (
    ImageRequest,
    RenderedView,
    limits_for,
    parse_identifier,
    parse_image_request,
)
from thumbservice.domain.spec import ThumbnailSpec

OWNER = "Token owner"
TILE = parse_image_request("0,0,512,512", "512,512", "0", "default.jpg")


class FakeViewRenderer:
    """Draws a 3000x2000 picture's views as text; optionally waits at a gate."""

    def __init__(self, width: int = 3000, height: int = 2000) -> None:
        self.size = (width, height)
        self.calls: list[tuple[tuple[str, ...], ThumbnailSpec, ImageRequest | None]] = []
        self.gate: asyncio.Event | None = None
        self.pictures: list[str | None] = []
        self.kept: set[str] = set()  # the pictures it keeps, as a frame cache would

    def holds(self, key: str) -> bool:
        return key in self.kept

    async def render_view(
        self,
        sources: Sequence[Path],
        spec: ThumbnailSpec,
        request: ImageRequest | None,
        workdir: Path,
        picture: str | None = None,
    ) -> RenderedView:
        self.calls.append((tuple(str(p) for p in sources), spec, request))
        self.pictures.append(picture)
        if picture is not None and not sources and picture not in self.kept:
            return RenderedView(0, 0)  # let go meanwhile: the caller brings the files
        if self.gate is not None:
            await self.gate.wait()
        if picture is not None:
            self.kept.add(picture)  # kept once made, as a frame cache keeps it
        width, height = self.size
        if request is None:
            return RenderedView(width, height)
        view = request.resolve(width, height, limits_for(width, height))
        return RenderedView(width, height, f"{view.region} {view.size}".encode())


@pytest.fixture
def archive() -> FakeArchive:
    made = FakeArchive()
    made.add(record(101))
    made.add(record(104, proposal_id="LCO2026B-999"), owner=OWNER)
    for frame_id, element in ((201, "rp"), (202, "V"), (203, "B")):
        made.add(record(frame_id, request_id=77, primary_optical_element=element))
    return made


def service_of(
    archive: FakeArchive,
    renderer: FakeViewRenderer,
    linger: float = 10.0,
    *,
    keeps_pictures: bool = False,
) -> tuple[DeepZoomService, FakeWorkspace]:
    workspace = FakeWorkspace()
    service = DeepZoomService(
        archive,
        renderer,
        workspace,
        FrameRules(),
        RenderAdmission(2, 0),
        telemetry=RecordingTelemetry(),
        linger=linger,
        pictures=renderer if keeps_pictures else None,  # type: ignore[arg-type]
    )
    return service, workspace


async def test_info_renders_once_then_remembers_the_size(archive: FakeArchive) -> None:
    renderer = FakeViewRenderer()
    service, _ = service_of(archive, renderer)
    first = await service.picture(parse_identifier("101"), None)
    second = await service.picture(parse_identifier("101"), None)
    assert (first.width, first.height, first.color) == (3000, 2000, False)
    assert second == first
    assert len(renderer.calls) == 1 and renderer.calls[0][2] is None
    # Every call still asked the archive: the lookup is the permission check.
    assert [c[0] for c in archive.calls] == ["get_frame", "get_frame"]
    await service.close()


async def test_a_hidden_frame_is_not_found_for_info_and_views(archive: FakeArchive) -> None:
    renderer = FakeViewRenderer()
    service, _ = service_of(archive, renderer)
    with pytest.raises(FrameNotFound):
        await service.picture(parse_identifier("104"), None)
    with pytest.raises(FrameNotFound):
        await service.view(parse_identifier("104"), TILE, "Token someone-else")
    assert renderer.calls == [] and archive.downloads[104] == 0
    shown = await service.view(parse_identifier("104"), TILE, OWNER)
    assert shown.data
    await service.close()


async def test_a_burst_of_views_downloads_the_frame_once(archive: FakeArchive) -> None:
    renderer = FakeViewRenderer()
    renderer.gate = asyncio.Event()
    service, workspace = service_of(archive, renderer)
    identifier = parse_identifier("101")
    tiles = [
        parse_image_request(f"{x},{y},512,512", "max", "0", "default.jpg")
        for x in range(0, 3000, 512)
        for y in range(0, 2000, 512)
    ]
    views = [asyncio.ensure_future(service.view(identifier, t, None)) for t in tiles]
    while len(renderer.calls) < 2:  # two workers busy, the rest admitted and waiting
        await asyncio.sleep(0)
    renderer.gate.set()
    answers = await asyncio.gather(*views)
    assert len({a.data for a in answers}) == len(tiles)
    assert archive.downloads[101] == 1 and service.downloads == 1
    assert workspace.opened == 1
    # A later burst within the linger uses the same files.
    await service.view(identifier, tiles[0], None)
    assert archive.downloads[101] == 1
    await service.close()
    assert workspace.open == 0


async def test_files_are_let_go_after_the_linger(archive: FakeArchive) -> None:
    service, workspace = service_of(archive, FakeViewRenderer(), linger=0)
    await service.view(parse_identifier("101"), TILE, None)
    while workspace.open:
        await asyncio.sleep(0)
    await service.view(parse_identifier("101"), TILE, None)
    assert archive.downloads[101] == 2 and workspace.opened == 2
    await service.close()


async def test_a_failed_download_is_tried_again(archive: FakeArchive) -> None:
    service, workspace = service_of(archive, FakeViewRenderer())
    original = archive.download
    failures = [RuntimeError("the file store hung up")]

    async def flaky(frame, destination):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await original(frame, destination)

    archive.download = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await service.view(parse_identifier("101"), TILE, None)
    assert (await service.view(parse_identifier("101"), TILE, None)).data
    await service.close()
    assert workspace.open == 0


async def test_colour_views_use_the_three_frames(archive: FakeArchive) -> None:
    renderer = FakeViewRenderer()
    service, _ = service_of(archive, renderer)
    picture = await service.picture(parse_identifier("201;color=true"), None)
    assert picture.color
    sources, spec, _ = renderer.calls[0]
    assert len(sources) == 3 and spec.color
    assert archive.downloads == {201: 1, 202: 1, 203: 1}
    await service.close()


async def test_revalidation_needs_no_render(archive: FakeArchive) -> None:
    renderer = FakeViewRenderer()
    service, _ = service_of(archive, renderer)
    identifier = parse_identifier("101")
    first = await service.view(identifier, TILE, None)
    again = await service.view(identifier, TILE, None, frozenset({first.etag}))
    assert again.data is None and again.etag == first.etag
    assert len(renderer.calls) == 1
    other = parse_image_request("0,0,512,512", "256,256", "0", "default.jpg")
    assert (await service.view(identifier, other, None)).etag != first.etag
    assert (await service.view(parse_identifier("101;median=true"), TILE, None)).etag != (
        first.etag
    )
    # The frame reduced again (a new version of its file): a new tag, so a browser holding
    # the old tile does not keep it on revalidation.
    archive.records[101]["version_set"] = [{"id": 2, "md5": "0f" * 16}]
    assert (await service.view(identifier, TILE, None)).etag != first.etag
    await service.close()


async def test_a_region_beyond_the_picture_is_a_400(archive: FakeArchive) -> None:
    service, _ = service_of(archive, FakeViewRenderer())
    beyond = parse_image_request("3000,0,10,10", "max", "0", "default.jpg")
    with pytest.raises(InvalidParameter):
        await service.view(parse_identifier("101"), beyond, None)
    await service.close()


async def test_views_beyond_their_queue_are_refused(archive: FakeArchive) -> None:
    renderer = FakeViewRenderer()
    renderer.gate = asyncio.Event()
    service, _ = service_of(archive, renderer)
    service.queue_depth = 3
    waiting = [asyncio.ensure_future(service.view(parse_identifier("101"), TILE, None))
               for _ in range(3)]  # fmt: skip
    while len(renderer.calls) < 2:
        await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await service.view(parse_identifier("101"), TILE, None)
    renderer.gate.set()
    await asyncio.gather(*waiting)
    await service.close()


async def test_summary_says_whether_colour_is_available(archive: FakeArchive) -> None:
    service, _ = service_of(archive, FakeViewRenderer())
    assert (await service.summary(parse_identifier("201"), None)).color_available
    plain = await service.summary(parse_identifier("104"), OWNER)
    assert plain.proposal_id == "LCO2026B-999" and not plain.color_available
    with pytest.raises(FrameNotFound):
        await service.summary(parse_identifier("104"), None)
    await service.close()


async def test_a_burst_of_views_of_a_cold_picture_decodes_the_frame_once(
    archive: FakeArchive,
) -> None:
    """With a renderer that keeps pictures, the views asked for at once while the picture is
    being made wait for it and are cut from it: one render from the files, on one worker,
    however many workers are free."""
    renderer = FakeViewRenderer()
    renderer.gate = asyncio.Event()
    service, _ = service_of(archive, renderer, keeps_pictures=True)
    identifier = parse_identifier("101")
    tiles = [
        parse_image_request(f"{x},{y},512,512", "max", "0", "default.jpg")
        for x in range(0, 3000, 512)
        for y in range(0, 2000, 512)
    ]
    views = [asyncio.ensure_future(service.view(identifier, t, None)) for t in tiles]
    info = asyncio.ensure_future(service.picture(identifier, None))
    # Every other view (and info.json) waits for the one making the picture.
    await until(lambda: service.waiting_for_pictures == len(tiles))
    assert len(renderer.calls) == 1  # two workers free, yet one render: the others wait
    renderer.gate.set()
    answers = await asyncio.gather(*views)
    assert len({a.data for a in answers}) == len(tiles)
    assert (await info).width == 3000
    from_files = [call for call in renderer.calls if call[0]]
    assert len(from_files) == 1 and archive.downloads[101] == 1
    assert len(renderer.calls) == len(tiles) + 1  # the rest were cut from the kept picture
    await service.close()


async def test_views_waiting_for_a_picture_that_failed_make_it_themselves(
    archive: FakeArchive,
) -> None:
    renderer = FakeViewRenderer()
    service, _ = service_of(archive, renderer, keeps_pictures=True)
    identifier = parse_identifier("101")
    failing = asyncio.Event()
    real = renderer.render_view

    async def fails_first(*args: object, **kwargs: object) -> RenderedView:
        if not failing.is_set():
            failing.set()
            await asyncio.sleep(0)
            raise InvalidParameter("the first render fails")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    renderer.render_view = fails_first  # type: ignore[method-assign]
    first = asyncio.ensure_future(service.view(identifier, TILE, None))
    second = asyncio.ensure_future(service.view(identifier, TILE, None))
    done = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(done[0], InvalidParameter)
    assert not isinstance(done[1], BaseException) and done[1].data  # made it itself
    await service.close()


async def test_a_kept_picture_serves_views_without_a_download(archive: FakeArchive) -> None:
    """With a renderer that keeps pictures, the first view renders from the files and keeps
    the picture; once the files are let go, further views are cut from it with no download,
    and the archive is still asked every time (the permission check)."""
    renderer = FakeViewRenderer()
    service, _ = service_of(archive, renderer, linger=0.0, keeps_pictures=True)
    identifier = parse_identifier("101;stretch=asinh")
    await service.view(identifier, TILE, None)
    assert archive.downloads[101] == 1
    await service.close()  # the files are gone; the picture stays kept
    other = parse_image_request("512,0,512,512", "256,", "0", "default.png")
    view = await service.view(identifier, other, None)
    assert view.data
    assert archive.downloads[101] == 1
    assert renderer.calls[-1][0] == ()  # drawn from the kept picture alone
    assert renderer.pictures[0] == renderer.pictures[-1] is not None
    assert [c[0] for c in archive.calls] == ["get_frame", "get_frame"]
    # Another stretch is another picture: the files again.
    await service.view(parse_identifier("101;stretch=log"), TILE, None)
    assert archive.downloads[101] == 2
    await service.close()


async def test_view_downloads_count_against_max_downloads(archive: FakeArchive) -> None:
    """A view's download takes one of the downloads thumbnails take (MAX_DOWNLOADS): with
    one under way and a limit of 1, another frame's view is a 503 at once; at shutdown the
    held download is cut short rather than waited for."""
    held = asyncio.Event()
    started = asyncio.Event()
    plain = archive.download

    async def holding(frame: Any, destination: Path) -> int:
        started.set()
        await held.wait()
        return await plain(frame, destination)

    archive.download = holding  # type: ignore[method-assign]
    service = DeepZoomService(
        archive, FakeViewRenderer(), FakeWorkspace(), FrameRules(),
        RenderAdmission(2, 0, max_downloads=1), telemetry=RecordingTelemetry(),
    )  # fmt: skip
    first = asyncio.ensure_future(service.view(parse_identifier("101"), TILE, None))
    await started.wait()
    with pytest.raises(Overloaded, match="downloading"):
        await service.view(parse_identifier("104"), TILE, OWNER)
    await service.close()  # returns although the download is never released
    with pytest.raises(asyncio.CancelledError):
        await first
