"""Looking at what the service answered: decode images, compare regions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image


def decode(data: bytes, expected: str = "JPEG") -> Image.Image:
    """The image in `data`, which must be encoded as `expected` (Pillow's name of a format)."""
    image = Image.open(io.BytesIO(data))
    assert image.format == expected, f"not a {expected}: {image.format}"
    image.load()
    return image


def region_difference(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference of two images over a box (left, top, right, bottom)."""
    pa = np.asarray(a.convert("L").crop(box), dtype=np.float32)
    pb = np.asarray(b.convert("L").crop(box), dtype=np.float32)
    return float(np.abs(pa - pb).mean())


def fits_pixels(path: Path) -> np.ndarray:
    with fits.open(path) as hdul:
        hdu = next(h for h in hdul if len(getattr(h, "shape", ())) == 2 and all(h.shape))
        return np.asarray(hdu.data, dtype=np.float64)


def measure_shift(reference: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    """How far the features of `image` sit from those of `reference`, (dx, dy) in pixels.

    A positive dx means a star at column x of `reference` is at column x + dx of `image`.
    FFT cross-correlation of the background-subtracted images, refined to a fraction of a
    pixel by a parabola through the peak and its neighbours along each axis.
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(image, dtype=np.float64)
    a = a - np.median(a)
    b = b - np.median(b)
    correlation = np.fft.irfft2(np.conj(np.fft.rfft2(a)) * np.fft.rfft2(b), s=a.shape)
    height, width = correlation.shape
    row, col = np.unravel_index(int(np.argmax(correlation)), correlation.shape)

    def vertex(before: float, peak: float, after: float) -> float:
        curvature = before - 2.0 * peak + after
        return 0.0 if curvature == 0 else 0.5 * (before - after) / curvature

    dy = row + vertex(
        correlation[(row - 1) % height, col],
        correlation[row, col],
        correlation[(row + 1) % height, col],
    )
    dx = col + vertex(
        correlation[row, (col - 1) % width],
        correlation[row, col],
        correlation[row, (col + 1) % width],
    )
    if dy > height / 2:
        dy -= height
    if dx > width / 2:
        dx -= width
    return float(dx), float(dy)


def tile_shifts(
    reference: np.ndarray, image: np.ndarray, tiles: int = 2
) -> list[tuple[float, float]]:
    """measure_shift in each of tiles x tiles tiles: with a rotation the shift varies."""
    height, width = reference.shape[0] // tiles, reference.shape[1] // tiles
    return [
        measure_shift(
            reference[i * height : (i + 1) * height, j * width : (j + 1) * width],
            image[i * height : (i + 1) * height, j * width : (j + 1) * width],
        )
        for i in range(tiles)
        for j in range(tiles)
    ]
