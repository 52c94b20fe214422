"""The reference renderer: fits2image itself, giving its exact pixels before any JPEG encoding.

Black and white is `fits_to_img(..., 'TIFF', ...)`: TIFF is lossless, so the image read back is
the one fits2image would have encoded. Color is the service's path today: the frames are put
on the red frame's grid by `alignment.align_to_reference`, fits2image's color mode stacks and
shrinks them, and the label is drawn in white (fits2image would draw it red). The fast renderer
is measured against this, and keeps its signature and result.

Two kinds of frame fits2image does not draw, and this adapter hands it what it can draw:

* **An image of three or four axes** (`NAXIS3 = 1` raw frames, a cube): fits2image wants a 2-D
  image. The plane the fast renderer draws (`layout`: the image itself for degenerate axes, the
  first plane of a cube) is written to a plain 2-D file in the scratch directory, with the
  merged header less the cards of the other axes, and fits2image draws that file.
* **A frame of fewer than 2,000 pixels** (a 765x1 guide-camera stub, a short one-row frame):
  fits2image's sample step, pixels // 2000, is 0 and its slice fails. Such a frame is drawn by
  the fast renderer, whose algorithm is fits2image's with every pixel a sample (`zscale`), and
  the log says so; a frame of 2,000 pixels or more is always fits2image's own.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from astropy.utils.exceptions import AstropyWarning
from PIL import Image

from thumbservice.adapters.rendering.engine import layout
from thumbservice.adapters.rendering.engine.labels import draw_label
from thumbservice.adapters.rendering.engine.memory import render_errors_as_domain_errors
from thumbservice.adapters.rendering.engine.result import RenderResult
from thumbservice.domain.errors import UnreadableFrame

logger = logging.getLogger(__name__)

FEWEST_PIXELS = 2000
"""fits2image takes `pixels // 2000` as its sample step: below this it is 0 and fails."""


@dataclass(frozen=True)
class _Drawing:
    """How a picture is to be drawn, whichever renderer draws it: the box, the label, colour or
    not, the stretch, the label's font and whether colour frames are aligned first."""

    width: int
    height: int
    label: str
    color: bool
    median: bool
    percentile: float
    font_path: Path
    align: bool


def render(
    paths: Sequence[Path],
    *,
    width: int,
    height: int,
    label: str = "",
    color: bool = False,
    median: bool = False,
    percentile: float = 99.5,
    font_path: Path,
    align: bool = True,
    workdir: Path | None = None,
) -> RenderResult:
    """fits2image's picture of `paths` (one frame, or red, visual and blue for `color`).

    Files it writes go to `workdir` (a temporary directory when None) and are removed again.
    Every failure becomes a domain error.
    """
    with (
        render_errors_as_domain_errors(logger),
        tempfile.TemporaryDirectory(dir=workdir, prefix="fits2image-") as scratch,
    ):
        drawing = _Drawing(width, height, label, color, median, percentile, Path(font_path), align)
        return _render([Path(p) for p in paths], Path(scratch), drawing)


def _render(paths: list[Path], scratch: Path, drawing: _Drawing) -> RenderResult:
    from fits2image.conversions import fits_to_img

    output = scratch / "image.tiff"
    aligned: bool | None = None
    note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if _too_small(paths):
            return _drawn_fast(paths, scratch, drawing)
        paths = [
            _drawable(path, scratch / f"plane-{index}.fits") for index, path in enumerate(paths)
        ]
        if drawing.color:
            if len(paths) != 3:
                raise UnreadableFrame("A color image needs exactly three frames")
            sources = paths
            if drawing.align:
                from thumbservice.adapters.rendering.engine.alignment import align_to_reference

                sources, report = align_to_reference(paths[0], paths[1:], scratch)
                aligned, note = report.aligned, report.reason
            done = fits_to_img(
                [str(p) for p in sources], str(output), "TIFF", width=drawing.width,
                height=drawing.height, color=True, median=drawing.median,
                percentile=drawing.percentile,
            )  # fmt: skip
        else:
            done = fits_to_img(
                str(paths[0]), str(output), "TIFF", width=drawing.width, height=drawing.height,
                median=drawing.median, percentile=drawing.percentile,
            )  # fmt: skip
    if not done or not output.is_file():
        raise UnreadableFrame("The frame could not be rendered (fits2image gave up on it)")
    with Image.open(output) as opened:
        image = opened.convert("RGB")
    if drawing.label:
        # Its pixels where fits2image's own label fits; a longer one is cut, not shrunk to 1 px.
        draw_label(image, drawing.label, drawing.font_path)
    return RenderResult(image, aligned, note)


def _too_small(paths: list[Path]) -> bool:
    """Whether a frame has fewer pixels than fits2image can sample."""
    for path in paths:
        try:
            height, width = layout.image_shape(path)
        except Exception:  # not an image: fits2image says so itself
            continue
        if height * width < FEWEST_PIXELS:
            return True
    return False


def _drawn_fast(paths: list[Path], scratch: Path, drawing: _Drawing) -> RenderResult:
    from thumbservice.adapters.rendering.engine import fast

    logger.info(
        "A frame of fewer than %d pixels, which fits2image cannot sample: drawn by the fast "
        "renderer",
        FEWEST_PIXELS,
    )
    return fast.render(
        paths, width=drawing.width, height=drawing.height, label=drawing.label,
        color=drawing.color, median=drawing.median, percentile=drawing.percentile,
        font_path=drawing.font_path, align=drawing.align, workdir=scratch,
    )  # fmt: skip


def _drawable(path: Path, plane: Path) -> Path:
    """`path`, or the 2-D file of its first plane written at `plane` when it has more axes."""
    if layout.write_plane(path, plane):
        logger.info("%s has more than two axes: fits2image draws its first plane", path.name)
        return plane
    return path
