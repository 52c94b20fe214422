"""Deep zoom over HTTP with the real renderer: the IIIF views are the thumbnail route's picture,
the tiles put together are the whole picture, a burst downloads the frame once."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from tests.e2e.conftest import AppFactory
from tests.support.archive_server import ArchiveStub
from tests.support.frames import OWNER
from tests.support.metrics import metric
from thumbservice.domain.iiif import scale_factors, tile_region


async def picture(client: TestClient, path: str, **headers: str) -> np.ndarray:
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return np.asarray(Image.open(io.BytesIO(await response.read())).convert("RGB"))


async def info(client: TestClient, identifier: str) -> dict:
    response = await client.get(f"/iiif/3/{identifier}/info.json")
    assert response.status == 200, await response.text()
    return await response.json(content_type=None)


async def test_full_max_is_the_full_size_thumbnail(client: TestClient) -> None:
    about = await info(client, "101")
    width, height = about["width"], about["height"]
    assert (width, height) == (800, 600)
    full = await picture(client, "/iiif/3/101/full/max/0/default.png")
    side = max(width, height)
    thumbnail = await picture(client, f"/101/?width={side}&height={side}&format=png&image=true")
    assert full.shape == (600, 800, 3)
    assert np.array_equal(full, thumbnail)


async def test_colour_full_max_is_the_colour_thumbnail(client: TestClient) -> None:
    full = await picture(client, "/iiif/3/202;color=true/full/max/0/color.png")
    thumbnail = await picture(client, "/202/?color=true&width=512&height=512&format=png&image=true")
    assert full.shape == (512, 512, 3) and np.array_equal(full, thumbnail)
    assert not np.array_equal(full[..., 0], full[..., 2])  # really three channels
    about = await info(client, "202;color=1")
    assert about["id"].endswith("/iiif/3/202;color=true")
    assert "color" in about["extraQualities"]


@pytest.mark.parametrize("cache", [False, True], ids=["no frame cache", "frame cache"])
async def test_a_view_with_a_colour_map_and_inversion_is_the_thumbnails(
    make_client: AppFactory, cache: bool
) -> None:
    # The colour map and the inversion are drawn once, as on the thumbnail, whether the view
    # is cut from the frame cache's scaled picture or from a picture rendered for it alone.
    client = await make_client(shared=False, frame_cache_bytes=(1 << 30) if cache else 0)
    for options in ("invert=true", "cmap=viridis;invert=true;stretch=asinh"):
        query = options.replace(";", "&")
        full = await picture(client, f"/iiif/3/101;{options}/full/max/0/default.png")
        thumbnail = await picture(
            client, f"/101/?{query}&width=800&height=800&format=png&image=true"
        )
        assert np.array_equal(full, thumbnail), options


async def test_a_frame_above_the_pixel_limit_is_a_422_for_views_too(
    make_client: AppFactory,
) -> None:
    client = await make_client(shared=False, max_image_pixels=1000)
    for path in ("/iiif/3/101/info.json", "/iiif/3/101/0,0,64,64/64,/0/default.jpg"):
        response = await client.get(path)
        assert response.status == 422, (path, await response.text())
        assert "above the limit" in (await response.json())["message"]


async def test_the_tiles_of_full_resolution_are_the_picture_without_seams(
    client: TestClient,
) -> None:
    full = await picture(client, "/iiif/3/101/full/max/0/default.png")
    height, width = full.shape[:2]
    stitched = np.zeros_like(full)
    for column in range(2):
        for row in range(2):
            box, (w, h) = tile_region(column, row, 1, width, height)
            tile = await picture(
                client,
                f"/iiif/3/101/{box.x},{box.y},{box.width},{box.height}/{w},{h}/0/default.png",
            )
            stitched[box.y : box.y + h, box.x : box.x + w] = tile
    assert np.array_equal(stitched, full)
    # A lower level is the picture scaled down, not a picture of its own (same stretch).
    assert scale_factors(width, height) == [1, 2]
    half = await picture(client, "/iiif/3/101/full/400,300/0/default.png")
    expected = np.asarray(Image.fromarray(full).resize((400, 300), Image.Resampling.LANCZOS))
    assert np.abs(half.astype(int) - expected.astype(int)).max() <= 1


async def test_turns_mirrors_and_qualities(client: TestClient) -> None:
    full = await picture(client, "/iiif/3/101/full/max/0/default.png")
    turned = await picture(client, "/iiif/3/101/full/max/90/default.png")
    assert np.array_equal(turned, np.rot90(full, -1))
    mirrored = await picture(client, "/iiif/3/101/full/max/!180/default.png")
    assert np.array_equal(mirrored, np.flipud(full))
    response = await client.get("/iiif/3/101/full/max/0/bitonal.png")
    bitonal = Image.open(io.BytesIO(await response.read()))
    assert bitonal.mode == "L" and set(np.unique(np.asarray(bitonal))) <= {0, 255}
    webp = await client.get("/iiif/3/101/square/256,/0/gray.webp")
    assert webp.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(await webp.read())).size == (256, 256)


async def test_a_burst_of_tiles_downloads_the_frame_once(
    client: TestClient, archive: ArchiveStub
) -> None:
    paths = [
        f"/iiif/3/202/{x},{y},128,128/64,64/0/default.jpg"
        for x in range(0, 512, 128)
        for y in range(0, 512, 128)
    ]
    answers = await asyncio.gather(*(client.get(p) for p in paths))
    assert [a.status for a in answers] == [200] * len(paths)
    assert archive.downloads[202] == 1
    # The permission check was made for each, the archive's answer reused for this caller.
    assert len([x for x in archive.lookups if "202" in x[0]]) < len(paths)


async def test_a_burst_of_tiles_decodes_the_frame_once_with_the_frame_cache(
    make_client: AppFactory, archive: ArchiveStub
) -> None:
    """As deployed (the frame cache on, its default): the views asked for at once while the
    picture is being made wait for it, so two free workers still decode the frame once."""
    client = await make_client(shared=False)
    paths = [
        f"/iiif/3/202/{x},{y},128,128/64,64/0/default.jpg"
        for x in range(0, 512, 128)
        for y in range(0, 512, 128)
    ]
    answers = await asyncio.gather(*(client.get(p) for p in paths))
    assert [a.status for a in answers] == [200] * len(paths)
    assert archive.downloads[202] == 1
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_renders_total", kind="bw") == 1
    assert metric(text, "thumbservice_frame_cache_bytes") > 0
    lookups = "thumbservice_frame_cache_lookups_total"
    assert metric(text, lookups, result="miss") == 1
    assert metric(text, lookups, result="hit") == len(paths) - 1


async def test_a_proprietary_frame_is_a_404_without_its_token(
    client: TestClient, archive: ArchiveStub
) -> None:
    for path in ("/iiif/3/102/info.json", "/iiif/3/102/0,0,256,256/256,256/0/default.jpg"):
        assert (await client.get(path)).status == 404
        assert (await client.get(path, headers={"Authorization": OWNER})).status == 200
    assert archive.downloads[102] == 1
