"""The label both renderers draw, as fits2image places it but always in white.

fits2image shrinks the font one pixel at a time, from 20 down to 1, until the text fits the
image's width, and draws it whatever its size. A label of the original service could be as long
as a URL allows, and fits2image then draws it at 1 px: a grey smear. Here the font shrinks the
same way but stops at `MIN_FONT_SIZE`, the smallest size at which DejaVu Sans Mono can still be
read; text that does not fit at that size is cut and ends with an ellipsis. A label that fits at
`MIN_FONT_SIZE` or larger gets exactly fits2image's pixels.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FONT_PATH = Path(__file__).with_name("fonts") / "DejaVuSansMono.ttf"
"""DejaVu Sans Mono, shipped inside the package (its licence beside it)."""

START_FONT_SIZE = 20
MIN_FONT_SIZE = 8
OFFSET = 4
"""Pixels between the label and the image's left and bottom edges, as fits2image keeps them."""
ELLIPSIS = "…"


@lru_cache(maxsize=64)
def _font(font_path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path, size)


def fit_label(text: str, width: int, font_path: str | Path) -> tuple[str, ImageFont.FreeTypeFont]:
    """The text to draw and its font, for an image `width` pixels wide (see the module doc)."""
    room = width - OFFSET
    size = START_FONT_SIZE
    font = _font(str(font_path), size)
    while _width(font, text) > room and size > MIN_FONT_SIZE:
        size -= 1
        font = _font(str(font_path), size)
    if _width(font, text) <= room:
        return text, font
    # The longest prefix that fits with the ellipsis; the font is monospaced, but the search
    # measures rather than counts, so characters the font lacks (drawn as boxes) are right too.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _width(font, text[:middle].rstrip() + ELLIPSIS) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS, font


def draw_label(image: Image.Image, text: str, font_path: str | Path) -> None:
    """White text in the lower left corner, shrunk (and if need be cut) until it fits.

    fits2image draws with a single-channel fill, which is white on a black-and-white image but
    red on a color one. Drawn on an RGB image, white here gives the same pixels fits2image
    gives a black-and-white image. Like fits2image, a font that cannot be used only costs the
    label, with a warning in the log.
    """
    if not text:
        return
    width, height = image.size
    try:
        shown, font = fit_label(text, width, font_path)
    except (OSError, ValueError) as err:
        logger.warning("Could not draw the label with font %s: %s", font_path, err)
        return
    _, _, _, bottom = font.getbbox(shown)
    ImageDraw.Draw(image).text(
        (OFFSET, height - OFFSET - bottom), shown, font=font, fill=(255, 255, 255)
    )


def _width(font: ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)
