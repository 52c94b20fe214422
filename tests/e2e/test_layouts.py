"""Frames of other layouts through the service: a raw frame stored as NAXIS3 = 1, a cube of
three planes, a 765x1 guide stub, a catalogue table. Both renderers, JSON and image=true."""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
from aiohttp.test_utils import TestClient

from tests.support.frames import FrameSet
from tests.support.imaging import decode


async def picture(client: TestClient, path: str) -> np.ndarray:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "image/jpeg"
    return np.asarray(decode(await response.read()).convert("L"), dtype=np.float64)


async def thumbnail_key(client: TestClient, path: str) -> str:
    """The stored object a JSON answer points to (its URL without the signature)."""
    response = await client.get(path)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["propid"] == "LCOEPO2018B-002"
    return urlsplit(str(body["url"])).path


LAYOUTS = [(107, 260, (256, 260)), (108, 160, (128, 160)), (109, 300, (1, 300))]
"""(frame, size asked for, (height, width) of the thumbnail): NAXIS3 = 1, a cube, a strip."""


async def test_other_layouts_get_a_thumbnail_from_both_renderers(  # type: ignore[no-untyped-def]
    make_client, client: TestClient, bucket: str
) -> None:
    # fits2image renders into a bucket of its own: the fast renderer's thumbnail is not reused.
    reference = await make_client(
        shared=False, renderer="fits2image", render_workers=1, aws_bucket=f"{bucket}-reference"
    )
    for frame, size, shape in LAYOUTS:
        path = f"/{frame}/?width={size}&height={size}"
        key = await thumbnail_key(client, path)
        assert key.rsplit("/", 1)[-1].startswith(f"{frame}.")
        assert await thumbnail_key(client, path) == key  # the same thumbnail, found again
        fast = await picture(client, path + "&image=true")
        slow = await picture(reference, path + "&image=true")
        assert fast.shape == slow.shape == shape, frame
        assert np.ptp(fast) > 50, frame  # stars on a sky
        # JPEG of the same picture: the mean difference is a fraction of one grey level.
        assert np.abs(fast - slow).mean() < 1.0, frame
        other = await thumbnail_key(reference, path)
        assert other.rsplit("/", 1)[-1] == key.rsplit("/", 1)[-1]  # the same cache key

    # A catalogue: no image to draw, a 422 in plain words from either renderer.
    for service in (client, reference):
        for suffix in ("", "&image=true"):
            response = await service.get(f"/110/?width=100{suffix}")
            assert response.status == 422
            body = await response.json()
            assert body["message"] == "The file holds no image, only tables or empty data"


async def test_a_cube_is_drawn_from_its_first_plane(
    client: TestClient, test_frames: FrameSet
) -> None:
    from astropy.io import fits

    cube = await picture(client, "/108/?width=320&height=320&image=true")
    with fits.open(test_frames.paths["cube"]) as hdul:
        planes = np.asarray(hdul[0].data, dtype=np.float64)
    # North up turns the rows over; the later planes are the first turned over twice.
    first, later = np.flipud(planes[0]), np.flipud(planes[1])
    assert np.corrcoef(cube.ravel(), first.ravel())[0, 1] > 0.5
    assert np.corrcoef(cube.ravel(), later.ravel())[0, 1] < 0.5
