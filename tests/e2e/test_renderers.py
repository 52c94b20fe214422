"""Both renderers behind the service: `fast` (the default) and `fits2image`, the reference.

The rest of the end-to-end suite runs on the default; here the service is started with
RENDERER=fits2image too, and the two answers are compared for the same thumbnails.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
from aiohttp.test_utils import TestClient

from tests.support.imaging import decode, tile_shifts
from thumbservice.domain.spec import MAX_LABEL_LENGTH, ImageFormat

PILLOW_NAMES = {ImageFormat.JPEG: "JPEG", ImageFormat.PNG: "PNG", ImageFormat.WEBP: "WEBP"}


async def image(client: TestClient, path: str) -> np.ndarray:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    kind = ImageFormat(parse_qs(urlsplit(path).query).get("format", ["jpeg"])[0])
    assert response.headers["Content-Type"] == kind.media_type
    decoded = decode(await response.read(), PILLOW_NAMES[kind])
    return np.asarray(decoded.convert("RGB"), dtype=np.float64)


LONG_LABEL = "So%20many%20stars%20" * (MAX_LABEL_LENGTH // 15)
PATHS = [
    "/101/?width=300&image=true",
    "/101/?width=300&median=true&percentile=90&image=true",
    "/101/?width=250&label=So%20many%20stars&image=true",
    f"/101/?width=250&label={LONG_LABEL}&image=true",
    "/101/?width=240&format=png&image=true",
    "/101/?width=240&format=webp&quality=90&label=stars&image=true",
    "/103/?width=200&image=true",  # a raw plain-FITS frame
    "/201/?color=true&width=256&image=true",
    "/201/?color=true&width=200&format=png&label=RVB&image=true",
]


async def test_the_service_draws_the_same_picture_with_either_renderer(  # type: ignore[no-untyped-def]
    make_client, client: TestClient, bucket: str
) -> None:
    # fits2image renders into a bucket of its own: the fast renderer's stored thumbnail (the
    # key names no renderer) would otherwise be answered, and compared with itself.
    reference = await make_client(
        shared=False, renderer="fits2image", render_workers=1, aws_bucket=f"{bucket}-reference"
    )
    for path in PATHS:
        fast = await image(client, path)
        slow = await image(reference, path)
        assert fast.shape == slow.shape, path
        # JPEG of the same picture: the mean difference is a fraction of one grey level.
        assert np.abs(fast - slow).mean() < 1.0, path
        if "color" in path:
            shifts = tile_shifts(fast[..., 0], fast[..., 2])
            assert max(max(abs(dx), abs(dy)) for dx, dy in shifts) < 1.0
