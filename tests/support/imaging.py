"""Looking at what the service answered: decode JPEGs, compare regions."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG", f"not a JPEG: {image.format}"
    image.load()
    return image


def region_difference(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference of two images over a box (left, top, right, bottom)."""
    pa = np.asarray(a.convert("L").crop(box), dtype=np.float32)
    pb = np.asarray(b.convert("L").crop(box), dtype=np.float32)
    return float(np.abs(pa - pb).mean())
