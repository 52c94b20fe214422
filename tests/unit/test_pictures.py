"""One picture per frame: its key, and the service drawing every view from it (fakes only)."""

import asyncio

import pytest

from tests.support.fakes import (
    FakeArchive,
    FakePictures,
    FakeStore,
    FakeWorkspace,
    RecordingTelemetry,
    record,
)
from tests.support.waiting import until
from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.errors import FrameNotFound, UnreadableFrame
from thumbservice.domain.frames import Frame, FrameRules
from thumbservice.domain.pictures import content_identity, picture_key
from thumbservice.domain.service import ThumbnailService
from thumbservice.domain.spec import ThumbnailSpec

VERSIONS = [{"id": 7, "md5": "aa11", "extension": ".fits.fz", "key": "k1", "url": "https://x/1"}]


def spec(**query: str) -> ThumbnailSpec:
    return ThumbnailSpec.from_query("1", query)


def frame(**overrides: object) -> Frame:
    return Frame.from_record(record(1, **{"version_set": VERSIONS, **overrides}))


def test_the_key_ignores_size_label_format_and_quality() -> None:
    sources = [frame()]
    base = picture_key(sources, spec())
    for other in (
        spec(width="1000", height="1000"),
        spec(label="another label"),
        spec(format="png"),
        spec(format="webp", quality="30"),
        spec(image="true"),
    ):
        assert picture_key(sources, other) == base


def test_the_key_follows_how_values_become_pixels() -> None:
    sources = [frame()]
    keys = {
        picture_key(sources, spec()),
        picture_key(sources, spec(median="true")),
        picture_key(sources, spec(median="true", percentile="90")),
    }
    assert len(keys) == 3
    # percentile changes nothing without median, so it shares the picture
    assert picture_key(sources, spec(percentile="90")) == picture_key(sources, spec())


def test_the_key_follows_the_files_content_not_the_presigned_url() -> None:
    base = picture_key([frame()], spec())
    assert picture_key([frame(url="https://files.example/1?X-Amz-Signature=new")], spec()) == base
    reduced_again = [*VERSIONS, {"id": 8, "md5": "bb22", "extension": ".fits.fz"}]
    assert picture_key([frame(version_set=reduced_again)], spec()) != base
    assert picture_key([frame(version_set=[{**VERSIONS[0], "md5": "cc33"}])], spec()) != base
    assert picture_key([frame(filename="other-e91.fits.fz")], spec()) != base
    # versions listed in another order are the same content
    two = [*VERSIONS, {"id": 8, "md5": "bb22"}]
    assert picture_key([frame(version_set=two)], spec()) == picture_key(
        [frame(version_set=list(reversed(two)))], spec()
    )


def test_records_without_versions_fall_back_on_size_and_checksum() -> None:
    plain = Frame.from_record(record(1))
    assert "version" not in content_identity(plain)
    sized = Frame.from_record(record(1, size=1234, md5="ff"))
    assert content_identity(sized) != content_identity(plain)
    assert "size=1234" in content_identity(sized) and "md5=ff" in content_identity(sized)


def test_a_color_key_names_every_source() -> None:
    red, visual, blue = (Frame.from_record(record(i, version_set=VERSIONS)) for i in (1, 2, 3))
    base = picture_key([red, visual, blue], spec(color="true"))
    other_blue = Frame.from_record(record(4, version_set=VERSIONS))
    assert picture_key([red, visual, other_blue], spec(color="true")) != base
    with pytest.raises(ValueError):
        picture_key([], spec())


class World:
    def __init__(self) -> None:
        self.archive = FakeArchive([record(1, version_set=VERSIONS)])
        self.pictures = FakePictures()
        self.store = FakeStore()
        self.workspace = FakeWorkspace()
        self.telemetry = RecordingTelemetry()
        self.service = ThumbnailService(
            self.archive,
            self.pictures,
            self.store,
            self.workspace,
            FrameRules(),
            RenderAdmission(2, 8),
            telemetry=self.telemetry,
            pictures=self.pictures,
        )

    async def ask(self, auth: str | None = None, **query: str):
        return await self.service.thumbnail(ThumbnailSpec.from_query("1", query), auth)


async def test_further_sizes_and_labels_need_no_download_and_no_render() -> None:
    world = World()
    first = await world.ask(width="200", height="200", image="true")
    assert first.data == b"JPEG 200x200 of 1"
    for query in (
        {"width": "1000", "height": "1000"},
        {"width": "4000", "height": "4000", "image": "true"},
        {"width": "200", "height": "200", "label": "another"},
        {"format": "png"},
    ):
        answer = await world.ask(**query)
        assert not answer.cache_hit  # a new thumbnail, drawn from the picture
    assert world.archive.downloads[1] == 1
    assert len(world.pictures.calls) == 1 and len(world.pictures.keeps) == 1
    assert [s.width for _, s in world.pictures.draws] == [1000, 4000, 200, 200]
    assert world.telemetry.events["frame_miss"] == 1
    assert world.telemetry.events["frame_hit"] == 4
    assert world.workspace.opened == 1  # no scratch directory without a download


async def test_the_permission_check_still_happens_on_every_view() -> None:
    world = World()
    world.archive.add(record(1, version_set=VERSIONS), owner="Token owner")
    await world.ask(auth="Token owner", width="300")
    with pytest.raises(FrameNotFound):
        await world.ask(auth="Token stranger", width="500")
    with pytest.raises(FrameNotFound):
        await world.ask(auth=None, width="500")
    assert world.pictures.draws == []
    assert [call[0] for call in world.archive.calls] == ["get_frame"] * 3


async def test_concurrent_sizes_of_one_frame_share_one_download_and_render() -> None:
    world = World()
    world.pictures.gate = asyncio.Event()
    tasks = [
        asyncio.ensure_future(world.ask(width=str(size), height=str(size), image="true"))
        for size in (200, 500, 1000, 4000)
    ]
    await until(lambda: world.telemetry.events["join"] == 3)  # every other request in the flight
    world.pictures.gate.set()
    answers = await asyncio.gather(*tasks)
    assert [a.data for a in answers] == [
        f"JPEG {s}x{s} of 1".encode() for s in (200, 500, 1000, 4000)
    ]
    assert world.archive.downloads[1] == 1
    assert len(world.pictures.calls) == 1
    assert world.telemetry.events["join"] == 3


async def test_a_picture_that_could_not_be_kept_leaves_each_view_to_its_own_render() -> None:
    world = World()
    world.pictures.refuse = True  # a full disk, or a picture larger than the cache
    first = await world.ask(width="200", image="true")
    second = await world.ask(width="500", image="true")
    assert first.data == b"JPEG 200x200 of 1" and second.data == b"JPEG 500x200 of 1"
    assert world.archive.downloads[1] == 2
    assert len(world.pictures.calls) == 2


async def test_a_followers_picture_failing_is_the_frames_error_for_all() -> None:
    world = World()
    world.pictures.gate = asyncio.Event()
    world.pictures.fail_with = UnreadableFrame("The frame could not be read as a FITS image")
    tasks = [asyncio.ensure_future(world.ask(width=str(s), image="true")) for s in (200, 300)]
    await until(lambda: world.telemetry.events["join"] == 1)  # the follower in the flight
    world.pictures.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, UnreadableFrame) for o in outcomes)
    assert world.archive.downloads[1] == 1


async def test_a_new_version_of_the_frame_is_rendered_again() -> None:
    world = World()
    await world.ask(width="200")
    world.archive.add(record(1, version_set=[*VERSIONS, {"id": 8, "md5": "bb22"}]))
    await world.ask(width="300")
    assert world.archive.downloads[1] == 2
    assert len(world.pictures.keeps) == 2 and len(set(world.pictures.keeps)) == 2


def test_the_picture_key_follows_the_stretch_but_not_the_colour_map() -> None:
    def options(**query: str) -> dict[str, object]:
        return ThumbnailSpec.from_query("1", query).picture_options()

    assert options() == options(cmap="grey", stretch="fits2image")
    assert options(stretch="asinh") == options(stretch="asinh", cmap="viridis", invert="true")
    assert options(stretch="asinh") != options(stretch="log")
    assert options(stretch="linear", interval="minmax") != options(stretch="linear")
