"""Views of a frame for the IIIF routes: regions, sizes, turns and qualities cut from the frame's
full-resolution 8-bit picture.

The picture is exactly the thumbnail route's picture at full size (fits2image's stretch over
the whole frame, its orientation, the colour frames aligned on their WCS), obtained through
one function, `full_picture`: from the frame cache (`views.picture_array`, the grey or RGB
values the thumbnails are drawn from, shared by every worker through the page cache) when
the pool keeps one, else rendered afresh at full size. A tile is a crop of it, so tiles have
no seams and a tile of the stretch is never computed from the tile alone. Each view then
takes the API's order of operations: region, size, mirror, rotation, quality, format.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from thumbservice.adapters.rendering import views
from thumbservice.adapters.rendering.engine.display import colours as display_colours
from thumbservice.adapters.rendering.framecache import entry_path
from thumbservice.adapters.rendering.worker import RenderJob, draw_picture, image_shape
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
    keep: views.Keep | None = None,
    renderer: str = "fast",
) -> tuple[np.ndarray, int]:
    """The frame's full-resolution oriented 8-bit picture for the spec's display options:
    uint8, height x width (black and white) or height x width x 3 (colour); and the bytes it
    added to the frame cache (0: none).

    With `keep` (the pool keeps a frame cache) the picture is the cache's entry, made first
    if it is not there: the scaled values before the colour map, which `view_bytes` then
    draws on each view as the thumbnail route draws it on each thumbnail. Without, it is
    rendered with the fast renderer at full size and without a label, colours included.
    """
    if keep is not None:
        directory = Path(keep.directory)
        entry = entry_path(directory, keep.key)
        held = entry.is_file()
        chosen = renderer if spec.display.is_default else "fast"
        picture = views.picture_array(
            directory, keep.key, sources, spec, max_bytes=keep.max_bytes, renderer=chosen,
            align=align, workdir=workdir,
        )  # fmt: skip
        if picture is None:  # not kept, and no files to make it from
            return np.zeros((0, 0), np.uint8), 0
        added = 0 if held or not entry.is_file() else entry.stat().st_size
        return picture, added
    side = max(max(image_shape(str(source))) for source in sources)
    job = RenderJob(
        sources=tuple(str(s) for s in sources),
        workdir=str(workdir),
        spec=dataclasses.replace(spec, width=side, height=side, label=""),
        max_pixels=max_pixels,
        align=align,
        renderer="fast",
    )
    image = draw_picture(job).image
    picture = np.asarray(image.convert("RGB"))
    # A grey picture is grey in all three channels: one is the picture.
    if spec.color or not spec.display.is_default:  # colour, or a colour map drawn on it
        return picture, 0
    return np.ascontiguousarray(picture[..., 0]), 0


def cut(picture: np.ndarray, view: ImageView, spec: ThumbnailSpec | None = None) -> Image.Image:
    """The view of a picture, as an image in the view's quality (L for grey and bitonal).

    With `spec`, the picture holds the scaled values only, and the spec's colour map and
    inversion are drawn on the resized region (as on a thumbnail).
    """
    box = view.region
    region = picture[box.y : box.y + box.height, box.x : box.x + box.width]
    image = Image.fromarray(np.ascontiguousarray(region))
    if view.size != (box.width, box.height):
        image = image.resize(view.size, Image.Resampling.LANCZOS)
    if spec is not None and not spec.display.is_default:
        image = display_colours(image, spec.display)
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


def view_bytes(
    picture: np.ndarray, view: ImageView, spec: ThumbnailSpec, *, colours: bool = False
) -> bytes:
    """The encoded view; `colours`: the picture is the frame cache's (scaled values only), so
    the colour map is drawn here."""
    return encode(cut(picture, view, spec if colours else None), view.format, spec.quality)


def picture_size(picture: np.ndarray) -> tuple[int, int]:
    """width, height."""
    return int(picture.shape[1]), int(picture.shape[0])
