"""`TileReader` gives astropy's pixels, bit for bit, on every kind of compressed frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from thumbservice.adapters.rendering.engine.framefile import FrameFile
from thumbservice.adapters.rendering.engine.tiles import TileReader


def sky(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Noise on a sky of 400, a NaN, and a constant row (a tile that will not quantize)."""
    data = np.random.default_rng(seed).normal(400.0, 20.0, shape).astype(np.float32)
    data[5, 7] = np.nan
    data[shape[0] // 3, :] = 0.0
    return data


def write(path: Path, data: np.ndarray, **options: object) -> Path:
    options.setdefault("compression_type", "RICE_1")
    hdu = fits.CompImageHDU(data, **options)  # type: ignore[arg-type]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def astropy_pixels(path: Path, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    with fits.open(path) as hdul:
        return np.asarray(hdul[1].data), np.asarray(hdul[1].section[start:stop])


FLOAT_OPTIONS = {
    "undithered": {},
    "dither 1": {"quantize_method": 1},
    "dither 2": {"quantize_method": 2},
    "dither seed": {"quantize_method": 1, "dither_seed": 1234},
    "coarse": {"quantize_level": 4.0},
    "tiles of 16 rows": {"tile_shape": (16, 257)},
    "dithered tiles of 16 rows": {"tile_shape": (16, 257), "quantize_method": 1},
}


@pytest.mark.parametrize("name", FLOAT_OPTIONS)
def test_float_frames_read_as_astropy_reads_them(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / "frame.fits.fz", sky((301, 257)), **FLOAT_OPTIONS[name])
    whole, part = astropy_pixels(path, 3, 117)
    with FrameFile(path) as frame:
        assert frame._tiles is not None
        ours, our_part = frame.whole(), frame.rows(3, 117)
        last = frame.rows(290, 301)
    assert ours.dtype == whole.dtype and our_part.dtype == part.dtype
    assert np.array_equal(ours, whole, equal_nan=True)
    assert np.array_equal(our_part, part, equal_nan=True)
    assert np.array_equal(last, whole[290:], equal_nan=True)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32])
def test_integer_frames_read_as_astropy_reads_them(tmp_path: Path, dtype: type) -> None:
    data = np.random.default_rng(2).integers(0, 200, (123, 77)).astype(dtype)
    path = write(tmp_path / "frame.fits.fz", data)
    whole, part = astropy_pixels(path, 10, 20)
    with FrameFile(path) as frame:
        assert frame._tiles is not None
        ours, our_part = frame.whole(), frame.rows(10, 20)
    assert ours.dtype == whole.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(ours, whole) and np.array_equal(our_part, part)


def test_bscale_and_bzero_are_applied_as_astropy_applies_them(tmp_path: Path) -> None:
    hdu = fits.CompImageHDU(
        np.random.default_rng(3).integers(0, 200, (50, 60)).astype(np.int16),
        compression_type="RICE_1",
    )
    hdu.header["BSCALE"], hdu.header["BZERO"] = 2.0, 10.0
    path = tmp_path / "scaled.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    whole, _ = astropy_pixels(path, 0, 1)
    with FrameFile(path) as frame:
        ours = frame.whole()
    assert ours.dtype == whole.dtype and np.array_equal(ours, whole)


@pytest.mark.parametrize(
    "options",
    [
        {"compression_type": "GZIP_1"},
        {"compression_type": "HCOMPRESS_1"},
        {"tile_shape": (32, 32)},
    ],
)
def test_other_compressions_are_left_to_astropy(tmp_path: Path, options: dict) -> None:
    path = write(tmp_path / "frame.fits.fz", sky((128, 96)), **options)
    whole, part = astropy_pixels(path, 40, 80)
    with fits.open(path) as hdul:
        assert TileReader.of(hdul[1]) is None
    with FrameFile(path) as frame:
        assert np.array_equal(frame.whole(), whole, equal_nan=True)
        assert np.array_equal(frame.rows(40, 80), part, equal_nan=True)
