"""Frames the renderers are compared on, beyond what `samples.write_frame` makes.

`write_frame` makes reduced (e91) frames as BANZAI writes them: RICE-compressed float32 behind
an empty primary, or a plain float32 primary. The archive holds other kinds too, and fits2image
treats some of them specially. Each writer here makes one such kind from the same star fields:

* `write_raw`: a raw (e00) frame, RICE-compressed unsigned 16-bit data (BZERO 32768) with a
  bias level and an overscan strip;
* `write_sinistro`: a Sinistro file, an empty primary holding the full header and four
  quadrant extensions with 17-card headers of their own (fits2image renders the first);
* `write_spectrum`: a 2-D spectrum (OBSTYPE SPECTRUM), which fits2image does not turn by
  its WCS;
* `write_plain`: an uncompressed primary image of a given type (int16, int32, float32);
* `write_quarter_turn`: a frame whose WCS turns it a quarter;
* `write_with_bad_pixels`: NaN and infinite pixels, which fits2image cannot render;
* `write_constant`: every pixel the same;
* `write_table_only`: no 2-D image at all.

Everything is seeded: the same arguments always give the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from thumbservice.adapters.archive.dev.frames import (
    FrameSpec,
    frame_header,
    render_pixels,
    write_frame,
)


def _spec(name: str, width: int, height: int, **fields: object) -> FrameSpec:
    return FrameSpec(name, width=width, height=height, **fields)  # type: ignore[arg-type]


def write_e91(directory: Path, name: str, size: int, **fields: object) -> Path:
    """A reduced frame as BANZAI writes it: RICE-compressed float32."""
    return write_frame(_spec(name, size, size, **fields), directory)


def write_raw(directory: Path, name: str, width: int, height: int) -> Path:
    """A raw frame: unsigned 16-bit counts on a bias of 1000, the last 32 columns overscan."""
    spec = _spec(name, width, height, reduction_level=0, noise_seed=5)
    pixels, _ = render_pixels(spec)
    counts = pixels + 600.0  # the sky sits near 400 in the reduced frame
    counts[:, -32:] = np.random.default_rng(9).normal(1000.0, 8.0, (height, 32))
    data = np.clip(np.rint(counts), 0, 65535).astype(np.uint16)
    header = frame_header(spec)
    hdul = fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(data, header, compression_type="RICE_1")]
    )
    path = directory / f"{name}.fits.fz"
    hdul.writeto(path, overwrite=True)
    return path


def write_sinistro(directory: Path, name: str, width: int, height: int) -> Path:
    """Four quadrants of a raw Sinistro frame; the WCS and the rest on the primary only."""
    spec = _spec(name, width, height, reduction_level=0, noise_seed=6)
    pixels, _ = render_pixels(spec)
    counts = np.clip(np.rint(pixels + 600.0), 0, 65535).astype(np.uint16)
    primary = fits.PrimaryHDU(header=frame_header(spec))
    half_h, half_w = height // 2, width // 2
    quadrants = []
    for number, (rows, cols) in enumerate(
        [
            (slice(0, half_h), slice(0, half_w)),
            (slice(0, half_h), slice(half_w, width)),
            (slice(half_h, height), slice(half_w, width)),
            (slice(half_h, height), slice(0, half_w)),
        ],
        1,
    ):
        quadrant = fits.ImageHDU(counts[rows, cols], name=f"SCI{number}")
        quadrant.header["CCDSUM"] = "1 1"
        quadrant.header["DATASEC"] = f"[1:{half_w},1:{half_h}]"
        quadrants.append(quadrant)
    path = directory / f"{name}.fits"
    fits.HDUList([primary, *quadrants]).writeto(path, overwrite=True)
    return path


def write_spectrum(directory: Path, name: str, width: int, height: int) -> Path:
    """A 2-D spectrum: a bright trace across the frame, arc-like lines, a prototype WCS."""
    spec = _spec(name, width, height, obstype="SPECTRUM", stars=0)
    rng = np.random.default_rng(11)
    data = rng.normal(300.0, 10.0, (height, width)).astype(np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    centre = height * 0.4 + 0.02 * np.arange(width) * height / width
    data += (4000.0 * np.exp(-0.5 * ((rows - centre) / 3.0) ** 2)).astype(np.float32)
    for column in rng.integers(0, width, 25):
        data[:, column : column + 2] += float(rng.uniform(200, 3000))
    path = directory / f"{name}.fits.fz"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(data, frame_header(spec), compression_type="RICE_1")]
    ).writeto(path, overwrite=True)
    return path


def write_plain(
    directory: Path, name: str, width: int, height: int, dtype: type[np.generic]
) -> Path:
    """An uncompressed primary image of `dtype` (int16 and int32 as counts above -200)."""
    spec = _spec(name, width, height, compressed=False, noise_seed=7)
    pixels, _ = render_pixels(spec)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.clip(np.rint(pixels - 600.0), info.min, info.max).astype(dtype)
    else:
        data = pixels.astype(dtype)
    path = directory / f"{name}.fits"
    fits.PrimaryHDU(data, frame_header(spec)).writeto(path, overwrite=True)
    return path


def write_quarter_turn(directory: Path, name: str, width: int, height: int) -> Path:
    """A frame whose WCS puts north along +x: fits2image turns it, swapping its sides."""
    return write_frame(_spec(name, width, height, rotation_deg=90.0, noise_seed=8), directory)


def write_with_bad_pixels(directory: Path, name: str, size: int) -> tuple[Path, Path]:
    """A plain float32 frame with NaN and infinite pixels, and the same frame without them.

    Returns (bad, clean): the bad pixels are a dead column, a saturated blob set to +inf, a
    few scattered NaN and -inf, and a NaN block in a corner.
    """
    spec = _spec(name, size, size, compressed=False, noise_seed=4)
    pixels, _ = render_pixels(spec)
    header = frame_header(spec)
    clean = directory / f"{name}-clean.fits"
    fits.PrimaryHDU(pixels, header).writeto(clean, overwrite=True)
    bad = pixels.copy()
    rng = np.random.default_rng(3)
    bad[:, size // 3] = np.nan
    bad[size // 2 : size // 2 + 4, size // 2 : size // 2 + 4] = np.inf
    bad[rng.integers(0, size, 40), rng.integers(0, size, 40)] = np.nan
    bad[rng.integers(0, size, 20), rng.integers(0, size, 20)] = -np.inf
    bad[: size // 8, : size // 8] = np.nan
    path = directory / f"{name}.fits"
    fits.PrimaryHDU(bad, header).writeto(path, overwrite=True)
    return path, clean


def write_constant(directory: Path, name: str, size: int, value: float = 400.0) -> Path:
    spec = _spec(name, size, size, compressed=False)
    data = np.full((size, size), value, dtype=np.float32)
    path = directory / f"{name}.fits"
    fits.PrimaryHDU(data, frame_header(spec)).writeto(path, overwrite=True)
    return path


def write_table_only(directory: Path, name: str) -> Path:
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0, 2.0])])
    path = directory / f"{name}.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
    return path


def write_color(directory: Path, name: str, size: int) -> list[Path]:
    """Red, visual and blue frames of one field, pointed apart as a real color request is."""
    specs = [
        _spec(f"{name}-r", size, size, filter="rp", field_seed=7, noise_seed=1),
        _spec(
            f"{name}-v", size, size, filter="V", field_seed=7, noise_seed=2, offset=(12, -7),
            rotation_deg=0.4,
        ),
        _spec(
            f"{name}-b", size, size, filter="B", field_seed=7, noise_seed=3, offset=(-9, 5),
            rotation_deg=-0.3,
        ),
    ]  # fmt: skip
    return [write_frame(spec, directory) for spec in specs]


@dataclass(frozen=True)
class Case:
    """One corpus case: the frames and the options both renderers are given."""

    name: str
    paths: list[Path]
    options: dict[str, object] = field(default_factory=dict)


def build_corpus(directory: Path, big: int = 4096, small: int = 2048) -> list[Case]:
    """The comparison corpus: `big` and `small` are the sides of the two e91 RICE frames.

    The other frames are sized from `small`, so a test can build the whole corpus small.
    """
    directory.mkdir(parents=True, exist_ok=True)
    half = small // 2
    d = directory
    label = {"label": "ogg1m001-fa16-20190321-0101-e91 gp 60s"}
    writers: list[tuple[str, Callable[[], list[Path]], dict[str, object]]] = [
        (f"e91 RICE {big}²", lambda: [write_e91(d, "e91-big", big)], {}),
        (f"e91 RICE {small}²", lambda: [write_e91(d, "e91-small", small)], {}),
        ("raw e00 uint16", lambda: [write_raw(d, "raw-e00", small, small)], {}),
        ("spectrum", lambda: [write_spectrum(d, "spectrum", small, half // 2)], {}),
        ("quarter turn", lambda: [write_quarter_turn(d, "turned", small, 3 * half // 2)], {}),
        ("Sinistro quadrants", lambda: [write_sinistro(d, "sinistro", small, small)], {}),
        ("plain int16", lambda: [write_plain(d, "int16", small, half, np.int16)], {}),
        ("plain float32", lambda: [write_plain(d, "float32", half, small, np.float32)], {}),
        ("label", lambda: [write_e91(d, "labelled", small, noise_seed=12)], label),
        ("median 99.5", lambda: [write_e91(d, "median", small, noise_seed=13)], {"median": True}),
        (
            "median 90",
            lambda: [write_e91(d, "median90", small, noise_seed=14)],
            {"median": True, "percentile": 90.0},
        ),
        ("color", lambda: write_color(d, "color", small), {"color": True, "label": "M42 RVB"}),
    ]
    return [Case(name, write(), options) for name, write, options in writers]
