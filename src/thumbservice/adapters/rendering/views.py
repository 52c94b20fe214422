"""Views of a kept picture: every size, label, format and quality of a frame from one decode.

fits2image makes a thumbnail by calling `Image.thumbnail` on the whole oriented 8-bit picture
and drawing the label on what comes out. The fast renderer computes the same pixels without
ever holding that picture; here it is made once, whole, into a frame-cache entry
(`framecache`), and every view is drawn from it as fits2image draws it: `Image.thumbnail`
(LANCZOS, reducing gap 2), RGB, the label, the encoding. The fast renderer follows Pillow's
two steps exactly (`blocks`), so a view drawn here has the bytes a fresh render gives.

What runs in a render worker (the pool sends it there):

* `render_and_keep`: a cold render. The picture is made in memory, the view drawn from it,
  then the picture written as an entry (unless it is larger than the whole cache, or the disk
  refuses it: the request is answered all the same).
* `draw_from_cache`: a view of an entry, or None when there is none (evicted, corrupt): the
  caller then renders afresh.
* `picture_array`: the picture itself as a numpy array, for code that cuts its own views
  (deep-zoom tiles).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from thumbservice.adapters.rendering.engine.labels import FONT_PATH, draw_label
from thumbservice.adapters.rendering.engine.memory import render_errors_as_domain_errors
from thumbservice.adapters.rendering.engine.result import RenderResult
from thumbservice.adapters.rendering.framecache import (
    HEADER_BYTES,
    entry_path,
    open_picture,
    write_entry,
)
from thumbservice.domain.spec import ThumbnailSpec

log = logging.getLogger("thumbservice.render")

WHOLE = 1 << 30
"""A box no frame reaches: fits2image's `thumbnail` leaves the picture at its full size."""


@dataclass(frozen=True)
class Keep:
    """Where a worker keeps the picture it makes: the cache's directory, the picture's key
    (`domain.pictures.picture_key`), and the cache's size (a larger picture is not kept)."""

    directory: str
    key: str
    max_bytes: int


@dataclass(frozen=True)
class KeptRender:
    """A cold render's outcome: the view, and the bytes of the entry kept (0: none)."""

    image: Image.Image
    aligned: bool | None
    note: str
    kept_bytes: int


def picture_image(pixels: np.ndarray) -> Image.Image:
    """A read-only Pillow image over `pixels` (height x width, or x 4 for RGB), not a copy."""
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        image = Image.frombuffer("L", (width, height), pixels, "raw", "L", 0, 1)
    else:
        try:
            # Pillow's own layout of an RGB image is 4 bytes a pixel: mapped, not copied.
            core: Any = Image.core
            mapped = core.map_buffer(pixels, (width, height), "raw", 0, ("RGB", 0, 1))
            image = Image.Image()._new(mapped)
        except Exception:  # a Pillow whose core differs: decode (a copy)
            image = Image.frombuffer("RGB", (width, height), pixels, "raw", "RGBX", 0, 1)
    image.readonly = 1  # drawing on it copies it first: the entry is never written through
    return image


def draw_view(
    picture: Image.Image, spec: ThumbnailSpec, font_path: Path = FONT_PATH
) -> Image.Image:
    """The thumbnail of `spec` from the full picture, exactly as fits2image draws it.

    `picture` is shrunk in place (Pillow gives it a new core; the pixels it mapped are left
    alone) and `convert` always makes a new image, so the label is never drawn on an entry.
    """
    from thumbservice.adapters.rendering.engine.display import colours

    picture.thumbnail((spec.width, spec.height), Image.Resampling.LANCZOS)
    # The colour map and the inversion are drawn on the view, as `fast.render` draws them
    # on its finished picture; the kept picture is the scaled grey (or RGB) values.
    display = None if spec.display.is_default else spec.display
    image = colours(picture, display)
    if image is picture:
        image = picture.copy()
    draw_label(image, spec.label, font_path)
    return image


def draw_from_cache(
    directory: Path, key: str, spec: ThumbnailSpec, font_path: Path = FONT_PATH
) -> Image.Image | None:
    """The view of `spec` from the entry `key`, or None when there is none (or it was corrupt,
    and has been removed)."""
    picture = open_picture(entry_path(directory, key))
    if picture is None:
        return None
    try:
        with render_errors_as_domain_errors(log):
            return draw_view(picture_image(picture.pixels), spec, font_path)
    finally:
        picture.close()


def render_and_keep(
    paths: Sequence[Path],
    spec: ThumbnailSpec,
    keep: Keep,
    *,
    renderer: str = "fast",
    align: bool = True,
    workdir: Path | None = None,
    font_path: Path = FONT_PATH,
) -> KeptRender:
    """Render the picture of `paths` once, draw the view of `spec` from it, and keep it under
    `keep` when it fits the cache and the disk takes it (the view is answered either way)."""
    held, allocate = _in_memory()
    result = make_picture(paths, spec, allocate, renderer=renderer, align=align, workdir=workdir)
    with render_errors_as_domain_errors(log):
        view = draw_view(result.image, spec, font_path)
    kept = 0
    if held and held[-1].nbytes + HEADER_BYTES <= keep.max_bytes:
        try:
            kept = write_entry(Path(keep.directory), keep.key, held[-1])
        except OSError as err:  # a full disk, a directory gone: nothing kept
            log.warning("frame_cache_write_failed: %s: %s", type(err).__name__, err)
    return KeptRender(view, result.aligned, result.note, kept)


def _in_memory() -> tuple[list[np.ndarray], Any]:
    """An `Allocate` that makes the picture in this process's memory, and the list that holds
    what it made (the picture is its last item)."""
    held: list[np.ndarray] = []

    def allocate(height: int, width: int, bands: int) -> np.ndarray:
        held.append(np.zeros((height, width) if bands == 1 else (height, width, bands), np.uint8))
        return held[-1]

    return held, allocate


def make_picture(
    paths: Sequence[Path],
    spec: ThumbnailSpec,
    allocate: object,
    *,
    renderer: str = "fast",
    align: bool = True,
    workdir: Path | None = None,
) -> RenderResult:
    """The full-resolution picture of `paths` for `spec`'s picture options, written into the
    array `allocate(height, width, bands)` gives; an image over it (L or RGB)."""
    from astropy.utils.exceptions import AstropyWarning

    from thumbservice.adapters.rendering.engine.fast import Allocate

    assert callable(allocate)
    target: Allocate = allocate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if renderer == "fast":
            from thumbservice.adapters.rendering.engine import fast

            return fast.render_picture(
                paths, target, color=spec.color, median=spec.median,
                percentile=spec.percentile, align=align, workdir=workdir,
                display=None if spec.display.is_default else spec.display,
            )  # fmt: skip
        from thumbservice.adapters.rendering import fits2image_renderer

        whole = fits2image_renderer.render(
            paths, width=WHOLE, height=WHOLE, color=spec.color, median=spec.median,
            percentile=spec.percentile, font_path=FONT_PATH, align=align, workdir=workdir,
        )  # fmt: skip
    width, height = whole.image.size
    if spec.color:
        pixels = target(height, width, 4)
        pixels[..., :3] = np.asarray(whole.image.convert("RGB"))
    else:
        # fits2image's black-and-white picture is L; its RGB copy has three equal channels.
        pixels = target(height, width, 1)
        pixels[...] = np.asarray(whole.image.convert("L"))
    return RenderResult(picture_image(pixels), whole.aligned, whole.note)


def picture_array(
    directory: Path,
    key: str,
    sources: Sequence[Path] = (),
    spec: ThumbnailSpec | None = None,
    *,
    max_bytes: int | None = None,
    renderer: str = "fast",
    align: bool = True,
    workdir: Path | None = None,
) -> np.ndarray | None:
    """The frame's full-resolution picture, oriented north-up as fits2image draws it, before
    any label or resizing: uint8, height x width for black and white, height x width x 3
    (RGB) for color. Read-only; the cache's own mapping, shared with every worker, whenever
    the picture is kept.

    `key` is the picture's key (`domain.pictures.picture_key` of the source frames and the
    spec), `directory` the frame cache's (`FRAME_CACHE_DIR`'s entry directory, the pool's
    `frame_cache.directory`). The picture comes from the cache when it holds it; otherwise it
    is rendered from `sources` with `spec`'s picture options and kept (within `max_bytes`, by
    default no limit: the caller's cache index should be told, as the pool does). Without
    `sources`, a picture the cache does not hold is None.
    """
    picture = open_picture(entry_path(directory, key))
    if picture is None:
        if not sources or spec is None:
            return None
        held, allocate = _in_memory()
        make_picture(sources, spec, allocate, renderer=renderer, align=align, workdir=workdir)
        made = held[-1]
        limit = max_bytes if max_bytes is not None else 1 << 62
        if made.nbytes + HEADER_BYTES <= limit:
            try:
                write_entry(directory, key, made)
                picture = open_picture(entry_path(directory, key))
            except OSError as err:
                log.warning("frame_cache_write_failed: %s: %s", type(err).__name__, err)
        if picture is None:
            made.flags.writeable = False
            return made if made.ndim == 2 else made[..., :3]
    pixels = picture.pixels
    return pixels if pixels.ndim == 2 else pixels[..., :3]
