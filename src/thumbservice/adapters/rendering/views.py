"""Views of a frame for the IIIF routes: regions, sizes, turns and qualities cut from the frame's
full-resolution 8-bit picture.

The picture is exactly the thumbnail route's picture at full size (fits2image's stretch over
the whole frame, its orientation, the colour frames aligned on their WCS), obtained through
one function, `full_picture`. A tile is a crop of it, so tiles have no seams and a tile of the
stretch is never computed from the tile alone. Each view then takes the API's order of
operations: region, size, mirror, rotation, quality, format.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from thumbservice.adapters.rendering.worker import RenderJob, draw, image_shape
from thumbservice.domain.iiif import ImageView, OutputFormat, Quality
from thumbservice.domain.spec import ThumbnailSpec

BITONAL_THRESHOLD = 128
PNG_COMPRESS_LEVEL = 1
"""zlib's fastest level: a 512 px PNG tile in a few milliseconds rather than tens."""

_TURNS = {
    90: Image.Transpose.ROTATE_270,  # Pillow turns counter-clockwise, IIIF clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def full_picture(
    sources: Sequence[Path],
    spec: ThumbnailSpec,
    *,
    workdir: Path,
    max_pixels: int,
    align: bool = True,
) -> np.ndarray:
    """The frame's full-resolution oriented 8-bit picture for the spec's display options:
    uint8, height x width (black and white) or height x width x 3 (colour).

    This is the one place the picture comes from. It renders the picture with the fast
    renderer at full size and without a label, as the thumbnail route would for a box as
    large as the frame; a frame cache replaces this body and keeps the picture instead.
    """
    side = max(max(image_shape(str(source))) for source in sources)
    job = RenderJob(
        sources=tuple(str(s) for s in sources),
        workdir=str(workdir),
        spec=dataclasses.replace(spec, width=side, height=side, label=""),
        max_pixels=max_pixels,
        align=align,
        renderer="fast",
    )
    image = draw(job).image
    picture = np.asarray(image.convert("RGB"))
    # A black-and-white picture is grey in all three channels: one is the picture.
    return picture if spec.color else np.ascontiguousarray(picture[..., 0])


def cut(picture: np.ndarray, view: ImageView) -> Image.Image:
    """The view of a picture, as an image in the view's quality (L for grey and bitonal)."""
    box = view.region
    region = picture[box.y : box.y + box.height, box.x : box.x + box.width]
    image = Image.fromarray(np.ascontiguousarray(region))
    if view.size != (box.width, box.height):
        image = image.resize(view.size, Image.Resampling.LANCZOS)
    if view.mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if view.rotation in _TURNS:
        image = image.transpose(_TURNS[view.rotation])
    if view.quality in (Quality.GRAY, Quality.BITONAL) and image.mode != "L":
        image = image.convert("L")
    if view.quality is Quality.BITONAL:
        image = image.point(lambda v: 255 if v >= BITONAL_THRESHOLD else 0)
    if view.quality is Quality.COLOR and image.mode != "RGB":
        # A grey picture asked for in colour: grey pixels in three bands.
        image = image.convert("RGB")
    return image


def encode(image: Image.Image, output: OutputFormat, quality: int) -> bytes:
    """The image in the view's format; `quality` is the lossy formats' (the route's default)."""
    buffer = io.BytesIO()
    if output is OutputFormat.PNG:
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif output is OutputFormat.WEBP:
        image.save(buffer, "WEBP", quality=quality)
    else:
        image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def view_bytes(picture: np.ndarray, view: ImageView, quality: int) -> bytes:
    return encode(cut(picture, view), view.format, quality)


def picture_size(picture: np.ndarray) -> tuple[int, int]:
    """width, height."""
    return int(picture.shape[1]), int(picture.shape[0])
