"""The reference renderer: fits2image itself, giving its exact pixels before any JPEG encoding.

Black and white is `fits_to_img(..., 'TIFF', ...)`: TIFF is lossless, so the image read back is
the one fits2image would have encoded. Color is the service's path today: the frames are put
on the red frame's grid by `alignment.align_to_reference`, fits2image's color mode stacks and
shrinks them, and the label is drawn in white (fits2image would draw it red). The fast renderer
is measured against this, and keeps its signature and result.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from astropy.utils.exceptions import AstropyWarning
from PIL import Image

from thumbservice.adapters.rendering.labels import draw_label
from thumbservice.adapters.rendering.memory import render_errors_as_domain_errors
from thumbservice.adapters.rendering.result import RenderResult
from thumbservice.domain.errors import UnreadableFrame

logger = logging.getLogger(__name__)


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
        return _render(
            [Path(p) for p in paths], Path(scratch), width, height, label, color, median,
            percentile, Path(font_path), align,
        )  # fmt: skip


def _render(
    paths: list[Path],
    scratch: Path,
    width: int,
    height: int,
    label: str,
    color: bool,
    median: bool,
    percentile: float,
    font_path: Path,
    align: bool,
) -> RenderResult:
    from fits2image.conversions import fits_to_img

    output = scratch / "image.tiff"
    aligned: bool | None = None
    note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if color:
            if len(paths) != 3:
                raise UnreadableFrame("A color image needs exactly three frames")
            sources = paths
            if align:
                from thumbservice.adapters.rendering.alignment import align_to_reference

                sources, report = align_to_reference(paths[0], paths[1:], scratch)
                aligned, note = report.aligned, report.reason
            done = fits_to_img(
                [str(p) for p in sources], str(output), "TIFF", width=width, height=height,
                color=True, median=median, percentile=percentile,
            )  # fmt: skip
        else:
            done = fits_to_img(
                str(paths[0]), str(output), "TIFF", width=width, height=height,
                median=median, percentile=percentile,
            )  # fmt: skip
    if not done or not output.is_file():
        raise UnreadableFrame("The frame could not be rendered (fits2image gave up on it)")
    with Image.open(output) as opened:
        image = opened.convert("RGB")
    if label:
        # Its pixels where fits2image's own label fits; a longer one is cut, not shrunk to 1 px.
        draw_label(image, label, font_path)
    return RenderResult(image, aligned, note)
