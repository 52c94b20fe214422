"""What runs inside a render process: limits checked from the header, the chosen renderer, the
encoding.

Kept apart from the pool so that a worker imports only what rendering needs. Two renderers draw
the same picture (`RENDERER`): `fast` (fits2image's algorithm in row bands, the default) and
`fits2image` (fits2image itself, the reference). A thumbnail with display options other than
fits2image's own (a stretch, an interval, a colour map) is always drawn by `fast`.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from thumbservice.adapters.observability.logs import configure_logging
from thumbservice.adapters.rendering.engine.labels import FONT_PATH
from thumbservice.adapters.rendering.engine.memory import (
    apply_memory_limit,
    render_errors_as_domain_errors,
)
from thumbservice.adapters.rendering.views import Keep
from thumbservice.domain.errors import FrameTooLarge, UnreadableFrame
from thumbservice.domain.iiif import ImageRequest, RenderedView, limits_for
from thumbservice.domain.spec import ImageFormat, ThumbnailSpec

if TYPE_CHECKING:
    from PIL import Image

    from thumbservice.adapters.rendering.engine.result import RenderResult

RENDERERS = ("fast", "fits2image")
PR_SET_PDEATHSIG = 1  # prctl(2)

log = logging.getLogger("thumbservice.render")


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs, picklable: the spec travels as the domain's own value."""

    sources: tuple[str, ...]
    workdir: str
    spec: ThumbnailSpec
    max_pixels: int
    align: bool = True
    renderer: str = "fast"
    font_path: str = str(FONT_PATH)
    keep: Keep | None = None
    """Keep the full-resolution picture in the frame cache, and draw the view from it."""


@dataclass(frozen=True)
class ViewJob:
    """A view drawn from a picture of the frame cache: no FITS file at all."""

    directory: str
    key: str
    spec: ThumbnailSpec
    font_path: str = str(FONT_PATH)


@dataclass(frozen=True)
class RenderOutcome:
    data: bytes
    aligned: bool | None
    note: str
    kept_bytes: int = 0
    """The size of the frame-cache entry written (0: none)."""


def init_worker(
    log_level: str,
    log_format: str,
    renderer: str = "fast",
    memory_limit: int | None = None,
    parent_pid: int | None = None,
) -> None:
    """A new worker process: log as the server does, cap its memory, import its renderer.

    `parent_pid` is the server's pid, as the pool that started this worker saw it.
    """
    _die_with_parent(parent_pid)
    configure_logging(log_level, log_format)
    apply_memory_limit(memory_limit)
    renderer_module(renderer)


def _die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to SIGKILL this worker when the server dies, however it dies.

    A server killed with SIGKILL (or by the OOM killer) cannot stop its pool, and a worker waiting
    on the pool's pipe would wait for ever. Elsewhere than Linux this does nothing.

    The server may have died before the request took effect: the worker then has another parent
    than the one that started it, and exits. The check compares with the server's own pid, never
    with 1: in a container the server itself is PID 1 (the image's exec-form ENTRYPOINT), and a
    worker whose parent is 1 is then a worker whose server is alive.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def warm_up(renderer: str = "fast") -> None:
    """Import the heavy modules once per process, before the first real job arrives."""
    renderer_module(renderer)


def renderer_module(name: str) -> ModuleType:
    if name == "fast":
        from thumbservice.adapters.rendering.engine import fast

        return fast
    if name == "fits2image":
        from thumbservice.adapters.rendering import fits2image_renderer

        return fits2image_renderer
    raise ValueError(f"unknown renderer {name!r}; expected one of {', '.join(RENDERERS)}")


def image_shape(path: str) -> tuple[int, ...]:
    """(height, width) of the image that would be drawn (the first plane of an image of three
    or four axes), read from headers only."""
    # astropy and Pillow are imported in the worker only: the server process, which imports
    # this module for the pool's sake, never needs them.
    from astropy.utils.exceptions import AstropyWarning

    from thumbservice.adapters.rendering.engine import layout

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            return layout.image_shape(path)
        except LookupError:
            raise UnreadableFrame("The file holds no image, only tables or empty data") from None


def render(job: RenderJob) -> RenderOutcome:
    """Render one thumbnail; every failure becomes a domain error the caller can answer with."""
    with render_errors_as_domain_errors(log):
        return _render(job)


def _render(job: RenderJob) -> RenderOutcome:
    if job.keep is not None:
        _check(job)
        from thumbservice.adapters.rendering.views import render_and_keep

        kept = render_and_keep(
            [Path(p) for p in job.sources], job.spec, job.keep, renderer=_renderer_for(job),
            align=job.align, workdir=Path(job.workdir), font_path=Path(job.font_path),
        )  # fmt: skip
        return RenderOutcome(encode(kept.image, job.spec), kept.aligned, kept.note, kept.kept_bytes)
    result = draw_picture(job)
    return RenderOutcome(encode(result.image, job.spec), result.aligned, result.note)


def _check(job: RenderJob | RegionJob) -> None:
    """Before a render from the files: each image within `max_pixels` (from its header), and
    the job's scratch directory still there."""
    for source in job.sources:
        height, width = image_shape(source)
        if width * height > job.max_pixels:
            raise FrameTooLarge(
                f"The image is {width}x{height} pixels, above the limit of {job.max_pixels}"
            )
    if not Path(job.workdir).is_dir():
        # The request was abandoned and its scratch space removed: do not recreate it.
        raise UnreadableFrame("The scratch directory disappeared before rendering")


def _renderer_for(job: RenderJob) -> str:
    """fits2image draws only its own picture: any other display choice is the fast
    renderer's, whichever renderer is configured."""
    return job.renderer if job.spec.display.is_default else "fast"


def draw_picture(job: RenderJob) -> RenderResult:
    """The picture of the job's spec, not yet encoded: what the thumbnail route answers, and,
    at full size, what the IIIF views are cut from when no frame cache keeps it
    (`regions.full_picture`)."""
    _check(job)
    spec = job.spec
    from astropy.utils.exceptions import AstropyWarning

    display = {} if spec.display.is_default else {"display": spec.display}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return renderer_module(_renderer_for(job)).render(
            [Path(p) for p in job.sources],
            width=spec.width,
            height=spec.height,
            label=spec.label,
            color=spec.color,
            median=spec.median,
            percentile=spec.percentile,
            font_path=Path(job.font_path),
            align=job.align,
            workdir=Path(job.workdir),
            **display,
        )


def draw(job: ViewJob) -> bytes | None:
    """The view of a frame-cache entry, encoded; None when the entry is not there (any more)
    or was corrupt (then removed)."""
    from thumbservice.adapters.rendering.views import draw_from_cache

    with render_errors_as_domain_errors(log):
        image = draw_from_cache(Path(job.directory), job.key, job.spec, Path(job.font_path))
        return None if image is None else encode(image, job.spec)


def encode(image: Image.Image, spec: ThumbnailSpec) -> bytes:
    """The image in the spec's format, always RGB.

    JPEG is saved as fits2image saves it (the requested quality, not progressive), so its bytes
    are the original service's. WebP is lossy at the requested quality; PNG is lossless and
    ignores it.
    """
    buffer = io.BytesIO()
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if spec.format is ImageFormat.PNG:
        rgb.save(buffer, "PNG")
    elif spec.format is ImageFormat.WEBP:
        rgb.save(buffer, "WEBP", quality=spec.quality)
    else:
        rgb.save(buffer, "JPEG", quality=spec.quality, progressive=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class RegionJob:
    """An IIIF view of a frame's full picture: the request is resolved here, once the
    picture's size is known (None: only the size is wanted, for info.json)."""

    sources: tuple[str, ...]
    workdir: str
    spec: ThumbnailSpec
    request: ImageRequest | None
    max_pixels: int
    align: bool = True
    keep: Keep | None = None
    """Where the frame cache keeps the picture (None: no cache, the picture is rendered)."""
    renderer: str = "fast"


def render_view(job: RegionJob) -> RenderedView:
    """The picture's size and the encoded view; every failure a domain error."""
    with render_errors_as_domain_errors(log):
        from thumbservice.adapters.rendering import regions

        if job.sources and job.keep is not None:
            _check(job)  # without a cache, `full_picture` renders through `draw_picture`'s check
        picture, kept = regions.full_picture(
            [Path(p) for p in job.sources],
            job.spec,
            workdir=Path(job.workdir),
            max_pixels=job.max_pixels,
            align=job.align,
            keep=job.keep,
            renderer=job.renderer,
        )
        width, height = regions.picture_size(picture)
        if not width:  # the kept picture is gone: the caller renders it from the files
            return RenderedView(0, 0)
        if job.request is None:
            return RenderedView(width, height, kept_bytes=kept)
        view = job.request.resolve(width, height, limits_for(width, height))
        # The frame cache's picture holds the scaled values only: the colours are drawn on the
        # view. Without a cache the picture was rendered with them.
        data = regions.view_bytes(picture, view, job.spec, colours=job.keep is not None)
        return RenderedView(width, height, data, kept_bytes=kept)
