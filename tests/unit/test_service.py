import asyncio

import pytest

from tests.support.fakes import (
    FakeArchive,
    FakeLeaseStore,
    FakeRenderer,
    FakeStore,
    FakeWorkspace,
    RecordingTelemetry,
    record,
)
from tests.support.waiting import until
from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.errors import (
    ArchiveUnavailable,
    ColorFramesNotFound,
    DeadlineExceeded,
    FrameNotEligible,
    FrameNotFound,
    Overloaded,
    StoreUnavailable,
)
from thumbservice.domain.frames import FrameRules
from thumbservice.domain.leases import RenderLeases
from thumbservice.domain.service import ThumbnailService
from thumbservice.domain.spec import ThumbnailSpec

TOKEN = "Token owner"


class World:
    def __init__(self, workers: int = 2, queue_depth: int = 8, deadline: float | None = None):
        self.archive = FakeArchive(
            [record(1), record(2, basename="twin"), record(3, basename="twin")]
        )
        self.renderer = FakeRenderer()
        self.store = FakeStore()
        self.workspace = FakeWorkspace()
        self.telemetry = RecordingTelemetry()
        self.admission = RenderAdmission(workers, queue_depth)
        self.service = ThumbnailService(
            self.archive,
            self.renderer,
            self.store,
            self.workspace,
            FrameRules(),
            self.admission,
            telemetry=self.telemetry,
            deadline=deadline,
        )

    async def ask(self, segment: str = "1", auth: str | None = None, **query: str):
        return await self.service.thumbnail(ThumbnailSpec.from_query(segment, query), auth)


@pytest.fixture
def world() -> World:
    return World()


async def test_miss_renders_stores_and_answers_a_url(world: World) -> None:
    result = await world.ask(width="300")
    assert not result.cache_hit
    assert result.propid == "LCOEPO2018B-002"
    assert result.url == f"https://store.example/{result.key}?expires_in=604800"
    assert world.store.objects[result.key] == (b"JPEG 300x200 of 1", "image/jpeg")
    assert world.archive.downloads[1] == 1
    assert len(world.renderer.calls) == 1
    assert world.workspace.open == 0


async def test_hit_answers_without_download_or_render(world: World) -> None:
    first = await world.ask(width="300")
    second = await world.ask(width="300")
    assert second.cache_hit and second.key == first.key
    assert world.archive.downloads[1] == 1
    assert len(world.renderer.calls) == 1
    assert world.telemetry.events["hit"] == 1 and world.telemetry.events["miss"] == 1


async def test_lookup_happens_on_every_request_even_on_a_hit(world: World) -> None:
    await world.ask()
    await world.ask()
    assert [c[0] for c in world.archive.calls] == ["get_frame", "get_frame"]


async def test_image_mode_answers_bytes(world: World) -> None:
    result = await world.ask(image="true", width="64", height="32")
    assert result.data == b"JPEG 64x32 of 1" and result.url is None
    again = await world.ask(image="true", width="64", height="32")
    assert again.cache_hit and again.data == result.data


async def test_authorization_is_forwarded_on_every_archive_call(world: World) -> None:
    world.archive.add(record(7, basename="mine"), owner=TOKEN)
    await world.ask("mine", auth=TOKEN)
    await world.ask("7", auth=TOKEN)
    assert {c[2] for c in world.archive.calls} == {TOKEN}


async def test_a_cached_private_thumbnail_never_reaches_another_caller(world: World) -> None:
    world.archive.add(record(7), owner=TOKEN)
    owner = await world.ask("7", auth=TOKEN)
    assert owner.url
    with pytest.raises(FrameNotFound):
        await world.ask("7")
    with pytest.raises(FrameNotFound):
        await world.ask("7", auth="Token someone-else", image="true")


async def test_basename_must_match_exactly_one_frame(world: World) -> None:
    with pytest.raises(FrameNotFound, match="matches 2 frames"):
        await world.ask("twin")
    with pytest.raises(FrameNotFound, match="not found"):
        await world.ask("nobody-e91")


async def test_rules_are_applied_before_any_download(world: World) -> None:
    world.archive.add(record(8, filename="bundle.tar.gz"))
    with pytest.raises(FrameNotEligible):
        await world.ask("8")
    assert not world.archive.downloads


async def test_archive_errors_pass_through(world: World) -> None:
    world.archive.fail_with = ArchiveUnavailable("down")
    with pytest.raises(ArchiveUnavailable):
        await world.ask()


async def test_render_failure_leaves_nothing_stored(world: World) -> None:
    world.renderer.fail_with = FrameNotEligible("boom")
    with pytest.raises(FrameNotEligible):
        await world.ask()
    assert not world.store.objects and world.workspace.open == 0


async def test_store_down_json_answers_store_unavailable(world: World) -> None:
    world.store.down = True
    with pytest.raises(StoreUnavailable):
        await world.ask()


async def test_store_down_image_still_renders_and_answers(world: World) -> None:
    world.store.down = True
    result = await world.ask(image="true")
    assert result.data == b"JPEG 200x200 of 1"
    assert world.telemetry.events["store_failed:get"] == 1
    assert world.telemetry.events["store_failed:put"] == 1


async def test_identical_concurrent_misses_share_one_download_and_render(world: World) -> None:
    world.renderer.gate = asyncio.Event()
    tasks = [asyncio.create_task(world.ask(width="120")) for _ in range(10)]
    await until(lambda: world.telemetry.events["join"] == 9)  # all ten in, one rendering
    world.renderer.gate.set()
    results = await asyncio.gather(*tasks)
    assert len({r.key for r in results}) == 1
    assert world.archive.downloads[1] == 1
    assert len(world.renderer.calls) == 1
    assert world.telemetry.events["join"] == 9
    assert len(world.archive.calls) == 10  # each caller's own permission check


async def test_queue_full_is_refused_at_once() -> None:
    world = World(workers=1, queue_depth=1)
    world.renderer.gate = asyncio.Event()
    running = [asyncio.create_task(world.ask(width=str(100 + i))) for i in range(2)]
    await until(lambda: world.admission.admitted == 2)  # one rendering, one queued
    with pytest.raises(Overloaded) as refused:
        await world.ask(width="300")
    assert refused.value.retry_after > 0
    world.renderer.gate.set()
    await asyncio.gather(*running)


async def test_deadline_exceeded() -> None:
    world = World(deadline=0.05)
    world.archive.download_gate = asyncio.Event()  # never opened: the download never ends
    with pytest.raises(DeadlineExceeded, match="deadline"):
        await world.ask()


async def test_color_uses_the_requests_red_visual_blue_frames(world: World) -> None:
    for frame_id, element in [(11, "rp"), (12, "V"), (13, "B"), (14, "gp")]:
        world.archive.add(record(frame_id, request_id=99, primary_optical_element=element))
    result = await world.ask("12", auth=TOKEN, color="true")
    assert result.key.startswith("11.")
    sources, request = world.renderer.calls[0]
    assert sources == ("frame-0.fits.fz", "frame-1.fits.fz", "frame-2.fits.fz")
    assert request.color
    assert {world.archive.downloads[i] for i in (11, 12, 13)} == {1}
    assert ("list_observing_request_frames", 99, TOKEN) in world.archive.calls


async def test_color_without_all_filters_is_not_found(world: World) -> None:
    world.archive.add(record(21, request_id=77, primary_optical_element="rp"))
    world.archive.add(record(22, request_id=77, primary_optical_element="V"))
    with pytest.raises(ColorFramesNotFound):
        await world.ask("21", color="true")


async def test_color_key_differs_from_black_and_white(world: World) -> None:
    for frame_id, element in [(31, "rp"), (32, "V"), (33, "B")]:
        world.archive.add(record(frame_id, request_id=55, primary_optical_element=element))
    bw = await world.ask("31")
    color = await world.ask("31", color="true")
    assert bw.key != color.key


async def test_image_answers_before_the_upload_and_the_url_waits_for_it(world: World) -> None:
    world.store.put_gate = asyncio.Event()
    image = await world.ask(image="true", width="90")
    assert image.data == b"JPEG 90x200 of 1"
    assert world.store.objects == {}  # still on its way
    json = asyncio.create_task(world.ask(width="90"))
    again = await world.ask(image="true", width="90")
    assert again.data == image.data and again.cache_hit
    await until(lambda: world.telemetry.events["miss"] == 2)  # the JSON request found the upload
    assert not json.done()  # a URL only once the object is stored
    world.store.put_gate.set()
    assert (await json).url
    assert len(world.renderer.calls) == 1 and world.store.puts == 1


async def test_an_upload_the_store_refuses_is_a_503_for_the_url_only(world: World) -> None:
    world.store.put_gate = asyncio.Event()
    image = await world.ask(image="true", width="91")
    json = asyncio.create_task(world.ask(width="91"))
    await until(lambda: world.telemetry.events["miss"] == 2)  # it waits for the upload now
    world.store.down = True
    world.store.put_gate.set()
    with pytest.raises(StoreUnavailable, match="could not be stored"):
        await json
    assert image.data and world.telemetry.events["store_failed:put"] == 1


async def test_drain_waits_for_uploads_with_patience(world: World) -> None:
    world.store.put_gate = asyncio.Event()
    await world.ask(image="true", width="92")
    assert await world.service.drain(0.05) == 1
    world.store.put_gate.set()
    assert await world.service.drain(1) == 0
    assert world.store.puts == 1 and len(world.store.objects) == 1


def leased_world(workers: int = 1, queue_depth: int = 0) -> tuple[World, FakeLeaseStore]:
    world = World(workers=workers, queue_depth=queue_depth)
    lease_store = FakeLeaseStore()
    world.service.leases = RenderLeases(lease_store, "replica-a", ttl=30.0)
    return world, lease_store


async def test_a_full_queue_refuses_before_claiming_a_lease() -> None:
    world, lease_store = leased_world()
    world.renderer.gate = asyncio.Event()
    first = asyncio.create_task(world.ask(width="50"))
    await until(lambda: world.renderer.calls)
    claims = lease_store.calls["create"]
    with pytest.raises(Overloaded):
        await world.ask(width="51")
    assert lease_store.calls["create"] == claims, "a lease was claimed for a refused job"
    assert world.archive.downloads[1] == 1
    world.renderer.gate.set()
    await first
    assert lease_store.leases == {}


async def test_slow_downloads_do_not_fill_the_render_queue() -> None:
    world = World(workers=1, queue_depth=0)
    world.archive.download_gate = asyncio.Event()
    slow = [asyncio.create_task(world.ask(width=str(60 + i))) for i in range(5)]
    await until(lambda: world.service.admission.downloading == 5)
    assert world.service.admission.admitted == 0
    world.archive.download_gate.set()
    await asyncio.gather(*slow)
    assert len(world.renderer.calls) == 5


async def test_too_many_downloads_are_refused_at_once() -> None:
    world = World()
    world.service.admission.max_downloads = 1
    world.archive.download_gate = asyncio.Event()
    first = asyncio.create_task(world.ask(width="70"))
    await until(lambda: world.service.admission.downloading)
    with pytest.raises(Overloaded, match="downloading"):
        await world.ask(width="71")
    world.archive.download_gate.set()
    await first


async def test_stop_lets_renders_and_uploads_finish_and_their_leases_go() -> None:
    world, lease_store = leased_world(workers=2, queue_depth=2)
    world.store.put_gate = asyncio.Event()
    answered = await world.ask(image="true", width="80")  # its upload waits at the gate
    world.renderer.gate = asyncio.Event()
    rendering = asyncio.create_task(world.ask(width="81"))
    await until(lambda: len(world.renderer.calls) == 2)
    stopping = asyncio.create_task(world.service.stop(5.0))
    world.renderer.gate.set()
    world.store.put_gate.set()
    assert await stopping == 0
    assert answered.key in world.store.objects
    assert (await rendering).key in world.store.objects
    assert lease_store.leases == {}


async def test_stop_cancels_what_outlasts_its_patience_and_releases_the_leases() -> None:
    world, lease_store = leased_world(workers=2, queue_depth=2)
    world.renderer.gate = asyncio.Event()  # never opened
    stuck = asyncio.create_task(world.ask(width="90"))
    await until(lambda: world.renderer.calls)
    assert lease_store.leases
    assert await world.service.stop(0.2) == 1
    assert lease_store.leases == {}
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
