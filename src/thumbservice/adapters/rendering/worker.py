"""What runs inside a render process: limits checked from the header, the chosen renderer, the
encoding.

Kept apart from the pool so that a worker imports only what rendering needs. Two renderers draw
the same picture (`RENDERER`): `fast` (fits2image's algorithm in row bands, the default) and
`fits2image` (fits2image itself, the reference).
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
from thumbservice.adapters.rendering.labels import FONT_PATH
from thumbservice.adapters.rendering.memory import (
    apply_memory_limit,
    render_errors_as_domain_errors,
)
from thumbservice.domain.errors import FrameTooLarge, UnreadableFrame
from thumbservice.domain.iiif import ImageRequest, RenderedView, limits_for
from thumbservice.domain.spec import ImageFormat, ThumbnailSpec

if TYPE_CHECKING:
    from PIL import Image

    from thumbservice.adapters.rendering.result import RenderResult

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


@dataclass(frozen=True)
class RenderOutcome:
    data: bytes
    aligned: bool | None
    note: str


def init_worker(
    log_level: str, log_format: str, renderer: str = "fast", memory_limit: int | None = None
) -> None:
    """A new worker process: log as the server does, cap its memory, import its renderer."""
    _die_with_parent()
    configure_logging(log_level, log_format)
    apply_memory_limit(memory_limit)
    renderer_module(renderer)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the server dies, however it dies.

    A server killed with SIGKILL (or by the OOM killer) cannot stop its pool, and a worker waiting
    on the pool's pipe would wait for ever. Elsewhere than Linux this does nothing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the server died before the request took effect
        os._exit(1)


def warm_up(renderer: str = "fast") -> None:
    """Import the heavy modules once per process, before the first real job arrives."""
    renderer_module(renderer)


def renderer_module(name: str) -> ModuleType:
    if name == "fast":
        from thumbservice.adapters.rendering import fast

        return fast
    if name == "fits2image":
        from thumbservice.adapters.rendering import fits2image_renderer

        return fits2image_renderer
    raise ValueError(f"unknown renderer {name!r}; expected one of {', '.join(RENDERERS)}")


def image_shape(path: str) -> tuple[int, ...]:
    """The shape of the first 2-D image in a FITS file, read from headers only."""
    # astropy and Pillow are imported in the worker only: the server process, which imports
    # this module for the pool's sake, never needs them.
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                shape = getattr(hdu, "shape", ())
                if len(shape) == 2 and all(shape):
                    return tuple(int(n) for n in shape)
    raise UnreadableFrame("The file holds no 2-D image")


def render(job: RenderJob) -> RenderOutcome:
    """Render one thumbnail; every failure becomes a domain error the caller can answer with."""
    with render_errors_as_domain_errors(log):
        return _render(job)


def _render(job: RenderJob) -> RenderOutcome:
    result = draw(job)
    return RenderOutcome(encode(result.image, job.spec), result.aligned, result.note)


def draw(job: RenderJob) -> RenderResult:
    """The picture of the job's spec, not yet encoded: what the thumbnail route answers, and,
    at full size, what the IIIF views are cut from (`views.full_picture`)."""
    for source in job.sources:
        height, width = image_shape(source)
        if width * height > job.max_pixels:
            raise FrameTooLarge(
                f"The image is {width}x{height} pixels, above the limit of {job.max_pixels}"
            )
    workdir = Path(job.workdir)
    if not workdir.is_dir():
        # The request was abandoned and its scratch space removed: do not recreate it.
        raise UnreadableFrame("The scratch directory disappeared before rendering")
    spec = job.spec
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return renderer_module(job.renderer).render(
            [Path(p) for p in job.sources],
            width=spec.width,
            height=spec.height,
            label=spec.label,
            color=spec.color,
            median=spec.median,
            percentile=spec.percentile,
            font_path=Path(job.font_path),
            align=job.align,
            workdir=workdir,
        )


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
class ViewJob:
    """An IIIF view of a frame's full picture: the request is resolved here, once the
    picture's size is known (None: only the size is wanted, for info.json)."""

    sources: tuple[str, ...]
    workdir: str
    spec: ThumbnailSpec
    request: ImageRequest | None
    max_pixels: int
    align: bool = True


def render_view(job: ViewJob) -> RenderedView:
    """The picture's size and the encoded view; every failure a domain error."""
    with render_errors_as_domain_errors(log):
        from thumbservice.adapters.rendering import views

        picture = views.full_picture(
            [Path(p) for p in job.sources],
            job.spec,
            workdir=Path(job.workdir),
            max_pixels=job.max_pixels,
            align=job.align,
        )
        width, height = views.picture_size(picture)
        if job.request is None:
            return RenderedView(width, height)
        view = job.request.resolve(width, height, limits_for(width, height))
        return RenderedView(width, height, views.view_bytes(picture, view, job.spec.quality))
