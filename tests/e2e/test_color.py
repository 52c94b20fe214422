"""Color composites over HTTP: the request's red, visual and blue frames, aligned by WCS."""

from __future__ import annotations

import numpy as np
from aiohttp.test_utils import TestClient

from tests.support.archive_server import ArchiveStub
from tests.support.frames import FrameSet
from tests.support.imaging import decode, tile_shifts
from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_record, write_frame


async def composite(client: TestClient, frame_id: int, **params: str) -> np.ndarray:
    response = await client.get(
        f"/{frame_id}/", params={"color": "true", "width": "512", "height": "512", **params}
    )
    assert response.status == 200, await response.text()
    image = decode(await response.read()).convert("RGB")
    return np.asarray(image)


async def test_color_composite_lines_up_red_and_blue(
    client: TestClient, archive: ArchiveStub
) -> None:
    rgb = await composite(client, 202, image="true")  # asked through the visual frame
    assert rgb.shape == (512, 512, 3)
    worst = max(
        max(abs(dx), abs(dy))
        for dx, dy in tile_shifts(rgb[..., 0].astype(float), rgb[..., 2].astype(float))
    )
    assert worst <= 1, f"red and blue are {worst} px apart"
    assert {archive.downloads[i] for i in (201, 202, 203)} == {1}


async def test_without_alignment_the_known_offset_shows(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(shared=False, color_alignment=False, render_workers=1)
    rgb = await composite(client, 201, image="true")
    shifts = tile_shifts(rgb[..., 0].astype(float), rgb[..., 2].astype(float))
    # blue was pointed (-9, 5) px from red; fits2image's north-up flip turns y around
    median = np.median(np.array(shifts), axis=0)
    assert abs(median[0] - -9) <= 2 and abs(median[1] - -5) <= 2, shifts


async def test_color_json_url_and_distinct_key(client: TestClient) -> None:
    color = await (await client.get("/201/?color=true")).json()
    bw = await (await client.get("/201/")).json()
    assert color["url"].split("?")[0] != bw["url"].split("?")[0]
    assert color["propid"] == "LCOEPO2018B-002"


async def test_a_frame_without_wcs_still_gives_a_composite(
    client: TestClient, archive: ArchiveStub, test_frames: FrameSet
) -> None:
    spec = FrameSpec(
        "ogg1m001-fa16-20190323-0303-e91", width=512, height=512, filter="B",
        field_seed=7, noise_seed=9, with_wcs=False, request_id=3000,
    )  # fmt: skip
    path = write_frame(spec, test_frames.directory)
    archive.add_frame(frame_record(spec, 303, url=""), path)
    for frame_id, name in ((301, "red"), (302, "visual")):
        record = {**test_frames.records[name], "id": frame_id, "request_id": 3000}
        archive.add_frame(record, test_frames.paths[name])
    rgb = await composite(client, 301, image="true")
    assert rgb.shape == (512, 512, 3)


async def test_missing_filter_is_404(
    client: TestClient, archive: ArchiveStub, test_frames: FrameSet
) -> None:
    for frame_id, name in ((401, "red"), (402, "visual")):
        record = {**test_frames.records[name], "id": frame_id, "request_id": 4000}
        archive.add_frame(record, test_frames.paths[name])
    response = await client.get("/401/?color=true")
    assert response.status == 404
    assert "RVB frames not found" in (await response.json())["message"]


async def test_color_rules(make_client, archive: ArchiveStub) -> None:  # type: ignore[no-untyped-def]
    # request_id is only required for color here, so the color rule itself is what refuses
    client = await make_client(required_frame_validation_keys=("configuration_type", "filename"))
    spectrum = await client.get("/104/?color=true")
    assert spectrum.status == 400
    record = {**archive_record(archive, 201), "id": 403, "request_id": None}
    archive.add_frame(record, None)
    no_request = await client.get("/403/?color=true")
    assert no_request.status == 400
    assert "request" in (await no_request.json())["message"]


def archive_record(archive: ArchiveStub, frame_id: int) -> dict:
    return dict(archive._records[frame_id])
