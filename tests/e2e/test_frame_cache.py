"""Decode once, end to end: every further view of a frame from the one picture the service
kept, with no second download, and the bytes of a fresh render."""

from __future__ import annotations

import re
from pathlib import Path

from structlog.testing import capture_logs

from tests.e2e.conftest import AppFactory
from tests.support.archive_server import ArchiveStub
from tests.support.frames import FrameSet
from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame
from thumbservice.adapters.rendering.engine import fast
from thumbservice.adapters.rendering.engine.labels import FONT_PATH
from thumbservice.adapters.rendering.worker import encode
from thumbservice.domain.spec import ThumbnailSpec

VERSION_1 = [{"id": 1, "md5": "5d41402abc4b2a76b9719d911017c592", "extension": ".fits.fz"}]


def fresh(paths: list[Path], segment: str, query: dict[str, str]) -> bytes:
    """What a fresh render of the request gives, without the service."""
    spec = ThumbnailSpec.from_query(segment, query)
    image = fast.render(
        paths, width=spec.width, height=spec.height, label=spec.label, color=spec.color,
        median=spec.median, percentile=spec.percentile, font_path=FONT_PATH,
    ).image  # fmt: skip
    return encode(image, spec)


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


async def test_further_sizes_labels_and_formats_need_no_second_download(
    make_client: AppFactory, archive: ArchiveStub, test_frames: FrameSet
) -> None:
    client = await make_client(shared=False, render_workers=1)
    views = [
        {"width": "200", "height": "200", "label": test_frames.records["public"]["filename"]},
        {"width": "1000", "height": "1000"},
        {"width": "800", "height": "800"},
        {"width": "200", "height": "200", "label": "another label"},
        {"width": "500", "format": "png"},
        {"width": "300", "format": "webp", "quality": "60"},
    ]
    with capture_logs() as logs:
        for query in views:
            response = await client.get("/101/", params={**query, "image": "true"})
            assert response.status == 200, await response.text()
            expected = fresh([test_frames.paths["public"]], "101", query)
            assert await response.read() == expected, query
    assert archive.downloads[101] == 1
    # the render log line says which path drew each view
    drawn = [entry["drawn_from"] for entry in logs if entry["event"] == "render"]
    assert drawn == ["fits"] + ["frame_cache"] * (len(views) - 1)
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, 'thumbservice_frame_cache_lookups_total{result="miss"}') == 1
    assert metric(metrics, 'thumbservice_frame_cache_lookups_total{result="hit"}') == 5
    assert metric(metrics, "thumbservice_frame_cache_bytes") == 64 + 800 * 600
    assert metric(metrics, "thumbservice_frame_cache_evictions_total") == 0
    # the JSON form too: a new key, stored, drawn from the kept picture
    response = await client.get("/101/", params={"width": "640"})
    assert response.status == 200 and archive.downloads[101] == 1


async def test_a_color_composite_at_a_second_size_downloads_nothing(
    make_client: AppFactory, archive: ArchiveStub, test_frames: FrameSet
) -> None:
    client = await make_client(shared=False, render_workers=1)
    paths = [test_frames.paths[name] for name in ("red", "visual", "blue")]
    for size in ("600", "4000", "128"):
        query = {"width": size, "height": size, "color": "true", "label": "M42"}
        response = await client.get("/201/", params={**query, "image": "true"})
        assert response.status == 200, await response.text()
        assert await response.read() == fresh(paths, "201", query), size
    assert [archive.downloads[i] for i in (201, 202, 203)] == [1, 1, 1]


async def test_a_new_version_of_a_frame_is_not_drawn_from_the_old_picture(
    make_client: AppFactory, archive: ArchiveStub, test_frames: FrameSet, tmp_path: Path
) -> None:
    record = {**test_frames.records["public"], "version_set": VERSION_1}
    archive.add_frame(record, test_frames.paths["public"])
    client = await make_client(shared=False, render_workers=1)
    first = await client.get("/101/", params={"width": "200", "image": "true"})
    assert first.status == 200 and archive.downloads[101] == 1

    # Reduced again: another file under the same id and name, and a new version in the record.
    again = write_frame(
        FrameSpec("ogg1m001-fa16-20190321-0101-e91", width=800, height=600, noise_seed=99),
        tmp_path,
    )
    reduced = [*VERSION_1, {"id": 2, "md5": "7d793037a0760186574b0282f2f435e7"}]
    archive.add_frame({**record, "version_set": reduced}, again)
    query = {"width": "300", "height": "300"}
    response = await client.get("/101/", params={**query, "image": "true"})
    assert response.status == 200
    assert archive.downloads[101] == 2
    assert await response.read() == fresh([again], "101", query)
    assert await response.read() != fresh([test_frames.paths["public"]], "101", query)
    # and the new picture serves the next size
    response = await client.get("/101/", params={"width": "500", "image": "true"})
    assert await response.read() == fresh([again], "101", {"width": "500"})
    assert archive.downloads[101] == 2
