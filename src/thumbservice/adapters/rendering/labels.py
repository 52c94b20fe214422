"""The label both renderers draw, as fits2image places it but always in white."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path(__file__).with_name("fonts") / "DejaVuSansMono.ttf"
"""DejaVu Sans Mono, shipped inside the package (its licence beside it)."""


def draw_label(image: Image.Image, text: str, font_path: str | Path) -> None:
    """White text in the lower left corner, shrunk until it fits, as fits2image places it.

    fits2image draws with a single-channel fill, which is white on a black-and-white image but
    red on a color one. Drawn on an RGB image, white here gives the same pixels fits2image
    gives a black-and-white image.
    """
    width, height = image.size
    size, offset = 20, 4
    font = ImageFont.truetype(str(font_path), size)
    left, _, right, bottom = font.getbbox(text)
    while right - left > width - offset and size > 1:
        size -= 1
        font = ImageFont.truetype(str(font_path), size)
        left, _, right, bottom = font.getbbox(text)
    ImageDraw.Draw(image).text(
        (offset, height - offset - bottom), text, font=font, fill=(255, 255, 255)
    )
