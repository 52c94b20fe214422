"""What runs inside a render process: limits checked from the header, then fits2image.

Kept apart from the pool so that a worker imports only what rendering needs.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from PIL import Image, ImageDraw, ImageFont

from thumbservice.adapters.observability.logs import configure_logging
from thumbservice.adapters.rendering.labels import FONT_PATH
from thumbservice.domain.errors import FrameTooLarge, ThumbnailError, UnreadableFrame
from thumbservice.domain.spec import ThumbnailSpec

OUTPUT_NAME = "thumbnail.jpg"

log = logging.getLogger("thumbservice.render")


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs, picklable: the spec travels as the domain's own value."""

    sources: tuple[str, ...]
    workdir: str
    spec: ThumbnailSpec
    max_pixels: int
    align: bool = True
    font_path: str = str(FONT_PATH)


@dataclass(frozen=True)
class RenderOutcome:
    data: bytes
    aligned: bool | None
    note: str


def init_worker(log_level: str, log_format: str) -> None:
    """A new worker process: log as the server does, then import what rendering needs."""
    configure_logging(log_level, log_format)
    warm_up()


def warm_up() -> None:
    """Import the heavy modules once per process, before the first real job arrives."""
    import fits2image.conversions  # noqa: F401

    from thumbservice.adapters.rendering import alignment  # noqa: F401


def image_shape(path: str) -> tuple[int, ...]:
    """The shape of the first 2-D image in a FITS file, read from headers only."""
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
    try:
        return _render(job)
    except ThumbnailError:
        raise
    except MemoryError:
        raise UnreadableFrame("The frame is too large to render in memory") from None
    except Exception as err:  # anything astropy or fits2image raises on a bad file
        # The cause names scratch paths: it goes to the log, the caller gets plain words.
        log.warning("unreadable_frame: %s: %s", type(err).__name__, err)
        raise UnreadableFrame("The frame could not be read as a FITS image") from None


def _render(job: RenderJob) -> RenderOutcome:
    from fits2image.conversions import fits_to_jpg

    for source in job.sources:
        height, width = image_shape(source)
        if width * height > job.max_pixels:
            raise FrameTooLarge(
                f"The image is {width}x{height} pixels, above the limit of {job.max_pixels}"
            )

    wanted = job.spec
    paths = list(job.sources)
    aligned: bool | None = None
    note = ""
    if wanted.color and job.align:
        from thumbservice.adapters.rendering.alignment import align_to_reference

        aligned_paths, report = align_to_reference(
            Path(paths[0]), [Path(p) for p in paths[1:]], Path(job.workdir)
        )
        paths = [str(p) for p in aligned_paths]
        aligned, note = report.aligned, report.reason

    output = Path(job.workdir) / OUTPUT_NAME
    if not Path(job.workdir).is_dir():
        # The request was abandoned and its scratch space removed: do not recreate it.
        raise UnreadableFrame("The scratch directory disappeared before rendering")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if wanted.color:
            _render_color(job, paths, output)
        elif not fits_to_jpg(
            paths[0],
            str(output),
            width=wanted.width,
            height=wanted.height,
            label_text=wanted.label,
            label_font=job.font_path,
            median=wanted.median,
            percentile=wanted.percentile,
            quality=wanted.quality,
        ):
            raise UnreadableFrame("The frame could not be rendered (fits2image gave up on it)")
    if not output.is_file():
        raise UnreadableFrame("The frame could not be rendered (no image was written)")
    return RenderOutcome(output.read_bytes(), aligned, note)


def _render_color(job: RenderJob, paths: list[str], output: Path) -> None:
    """fits2image's color mode, written losslessly, then labelled in white and encoded once.

    fits2image draws labels with a single-channel fill, which comes out red on a color image.
    """
    from fits2image.conversions import fits_to_img

    wanted = job.spec
    composite = Path(job.workdir) / "composite.tiff"
    if not fits_to_img(
        paths,
        str(composite),
        "TIFF",
        width=wanted.width,
        height=wanted.height,
        color=True,
        median=wanted.median,
        percentile=wanted.percentile,
    ):
        raise UnreadableFrame("The color frames could not be rendered (fits2image gave up)")
    with Image.open(composite) as opened:
        image = opened.convert("RGB")
    if wanted.label:
        draw_label(image, wanted.label, job.font_path)
    image.save(output, "JPEG", quality=wanted.quality)


def draw_label(image: Image.Image, text: str, font_path: str) -> None:
    """White text in the lower left corner, shrunk until it fits, as fits2image places it."""
    width, height = image.size
    size, offset = 20, 4
    font = ImageFont.truetype(font_path, size)
    left, _, right, bottom = font.getbbox(text)
    while right - left > width - offset and size > 1:
        size -= 1
        font = ImageFont.truetype(font_path, size)
        left, _, right, bottom = font.getbbox(text)
    ImageDraw.Draw(image).text(
        (offset, height - offset - bottom), text, font=font, fill=(255, 255, 255)
    )
