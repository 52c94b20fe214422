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
    directory.mkdir(parents=True, exist_ok=True)
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


# Layouts: every way the archive's files store an image, as astropy writes them.

LAYOUT_SIDE = (96, 72)
"""(width, height) of a layout frame: 6,912 pixels, above the 2,000 fits2image samples."""


@dataclass(frozen=True)
class Layout:
    """One storage layout of a frame.

    `fits2image` says whether fits2image can draw it (directly or as the adapter hands it the
    plane). `same_as` names a file holding the same values in a layout the fast renderer reads
    by the same path, whose picture must be the same bytes (where fits2image cannot draw it,
    or where the layout only wraps another).
    """

    name: str
    path: Path
    fits2image: bool = True
    same_as: Path | None = None


def _field(name: str, width: int, height: int, seed: int) -> tuple[np.ndarray, fits.Header]:
    stars = max(12, width * height // 600)
    spec = _spec(name, width, height, stars=stars, noise_seed=seed, compressed=False)
    pixels, _ = render_pixels(spec)
    return pixels.astype(np.float32), frame_header(spec)


def _counts(pixels: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """The field as counts of `dtype`: a bias of 600 above the sky, a quarter of it for bytes."""
    values = pixels * 0.25 if np.dtype(dtype).itemsize == 1 else pixels + 600.0
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype)


def _compressed(path: Path, data: np.ndarray, header: fits.Header, **options: object) -> Path:
    hdu = fits.CompImageHDU(data, header, **options)  # type: ignore[arg-type]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def _plain(path: Path, data: np.ndarray, header: fits.Header) -> Path:
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return path


def _as_read(source: Path, target: Path) -> Path:
    """A plain file of the values astropy reads from `source`'s image (NaN blanks and all)."""
    with fits.open(source) as hdul:
        hdu = next(h for h in hdul if h.is_image and h.shape)
        data = np.asarray(hdu.data)
        header = frame_header(_spec(target.stem, data.shape[-1], data.shape[-2]))
    while data.ndim > 2:
        data = data[0]
    return _plain(target, data, header)


def build_layouts(directory: Path, size: tuple[int, int] = LAYOUT_SIDE) -> list[Layout]:
    """Each storage layout of one star field of `size` (width, height), and strips of fixed
    sizes (seeded: the same files every time)."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    width, height = size
    pixels, header = _field("layout", width, height, 21)
    blanked = pixels.copy()
    blanked[height // 7 : height // 7 + 4, width // 5 : width // 3] = np.nan
    uint16 = _counts(pixels, np.uint16)
    layouts: list[Layout] = []

    def add(name: str, path: Path, fits2image: bool = True, same_as: Path | None = None) -> None:
        layouts.append(Layout(name, path, fits2image, same_as))

    # Tile compression, behind an empty primary.
    for method in ("SUBTRACTIVE_DITHER_1", "SUBTRACTIVE_DITHER_2", "NO_DITHER"):
        add(
            f"RICE_1 float32 {method}",
            _compressed(
                d / f"rice-{method}.fits.fz", pixels, header, compression_type="RICE_1",
                quantize_method={"NO_DITHER": -1, "SUBTRACTIVE_DITHER_1": 1}.get(method, 2),
                dither_seed=1,
            ),
        )  # fmt: skip
    zblank = _compressed(d / "rice-zblank.fits.fz", blanked, header, dither_seed=1)
    add("RICE_1 float32 ZBLANK", zblank, False, _as_read(zblank, d / "zblank-as-read.fits"))
    for dtype in (np.uint8, np.int16, np.uint16, np.int32):
        name = np.dtype(dtype).name
        add(
            f"RICE_1 {name}",
            _compressed(d / f"rice-{name}.fits.fz", _counts(pixels, dtype), header),
        )
    add("RICE_1 float32 32x32 tiles", _compressed(
        d / "rice-square.fits.fz", pixels, header, tile_shape=(32, 32), dither_seed=1
    ))  # fmt: skip
    for kind in ("GZIP_1", "GZIP_2"):
        add(f"{kind} float32", _compressed(
            d / f"{kind}-float32.fits.fz", pixels, header, compression_type=kind, dither_seed=1
        ))  # fmt: skip
        add(f"{kind} int16", _compressed(
            d / f"{kind}-int16.fits.fz", _counts(pixels, np.int16), header, compression_type=kind
        ))  # fmt: skip
    add("GZIP_1 int64", _compressed(
        d / "gzip-int64.fits.fz", _counts(pixels, np.int64), header, compression_type="GZIP_1"
    ))  # fmt: skip
    add("GZIP_2 float64 lossless", _compressed(
        d / "gzip-float64.fits.fz", pixels.astype(np.float64), header,
        compression_type="GZIP_2", quantize_level=0.0,
    ))  # fmt: skip
    add("HCOMPRESS_1 int16", _compressed(
        d / "hcompress.fits.fz", _counts(pixels, np.int16), header,
        compression_type="HCOMPRESS_1",
    ))  # fmt: skip
    add("HCOMPRESS_1 float32 smoothed", _compressed(
        d / "hcompress-smooth.fits.fz", pixels, header, compression_type="HCOMPRESS_1",
        hcomp_scale=2.0, hcomp_smooth=True, dither_seed=1,
    ))  # fmt: skip
    add("PLIO_1 int32", _compressed(
        d / "plio.fits.fz", _counts(pixels, np.int32), header, compression_type="PLIO_1"
    ))  # fmt: skip
    add("NOCOMPRESS float32", _compressed(
        d / "nocompress.fits.fz", pixels, header, compression_type="NOCOMPRESS"
    ))  # fmt: skip

    # Plain files: every BITPIX, scaled, blank, primary or a later extension.
    for dtype in (np.uint8, np.int16, np.int32, np.int64):
        name = np.dtype(dtype).name
        add(f"plain {name}", _plain(d / f"plain-{name}.fits", _counts(pixels, dtype), header))
    add("plain uint16 (BZERO 32768)", _plain(d / "plain-uint16.fits", uint16, header))
    add("plain float32", _plain(d / "plain-float32.fits", pixels, header))
    add("plain float64", _plain(d / "plain-float64.fits", pixels.astype(np.float64), header))
    scaled = fits.PrimaryHDU(pixels.copy(), header)
    scaled.scale("int16", bscale=0.5, bzero=200.0)
    scaled.writeto(d / "plain-scaled.fits", overwrite=True)
    add("plain int16 BSCALE 0.5 BZERO 200", d / "plain-scaled.fits")
    with_blank = _counts(pixels, np.int16)
    with_blank[height // 7 : height // 7 + 4, width // 5 : width // 3] = -32768
    blank_header = header.copy()
    blank_header["BLANK"] = -32768
    blank_header["BSCALE"], blank_header["BZERO"] = 1.0, 0.0
    blank = _plain(d / "plain-blank.fits", with_blank, blank_header)
    add("plain int16 BLANK", blank, False, _as_read(blank, d / "blank-as-read.fits"))
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table, fits.ImageHDU(pixels, header, name="SCI")]).writeto(
        d / "extension.fits", overwrite=True
    )
    add("plain float32 in a later extension", d / "extension.fits")

    # More axes: degenerate ones are the image, a cube draws its first plane.
    flat = _plain(d / "flat-uint16.fits", uint16, header)
    add("plain NAXIS3=1 uint16", _plain(d / "naxis3.fits", uint16[None], header), True, flat)
    add("plain NAXIS4=1 uint16", _plain(d / "naxis4.fits", uint16[None, None], header), True, flat)
    flat_rice = _compressed(d / "flat-rice.fits.fz", uint16, header)
    add(
        "RICE_1 NAXIS3=1 uint16",
        _compressed(d / "naxis3-rice.fits.fz", uint16[None], header),
        True,
        flat_rice,
    )
    others = _counts(pixels[::-1, ::-1], np.uint16)
    cube = np.stack([uint16, others, others])
    add("plain cube of 3 planes", _plain(d / "cube.fits", cube, header), True, flat)
    add(
        "RICE_1 cube of 3 planes",
        _compressed(d / "cube-rice.fits.fz", cube, header),
        True,
        flat_rice,
    )

    # Strips: fits2image samples 2,000 pixels and cannot draw fewer.
    for strip_width, strip_height in ((2048, 1), (2048, 5), (765, 1), (40, 10)):
        strip, strip_header = _field(f"strip{strip_width}", strip_width, strip_height, 22)
        add(
            f"strip {strip_width}x{strip_height}",
            _plain(d / f"strip-{strip_width}x{strip_height}.fits", strip, strip_header),
            strip_width * strip_height >= 2000,
        )
    assert [entry.name for entry in layouts] == LAYOUT_NAMES
    return layouts


LAYOUT_NAMES = [
    "RICE_1 float32 SUBTRACTIVE_DITHER_1",
    "RICE_1 float32 SUBTRACTIVE_DITHER_2",
    "RICE_1 float32 NO_DITHER",
    "RICE_1 float32 ZBLANK",
    "RICE_1 uint8",
    "RICE_1 int16",
    "RICE_1 uint16",
    "RICE_1 int32",
    "RICE_1 float32 32x32 tiles",
    "GZIP_1 float32",
    "GZIP_1 int16",
    "GZIP_2 float32",
    "GZIP_2 int16",
    "GZIP_1 int64",
    "GZIP_2 float64 lossless",
    "HCOMPRESS_1 int16",
    "HCOMPRESS_1 float32 smoothed",
    "PLIO_1 int32",
    "NOCOMPRESS float32",
    "plain uint8",
    "plain int16",
    "plain int32",
    "plain int64",
    "plain uint16 (BZERO 32768)",
    "plain float32",
    "plain float64",
    "plain int16 BSCALE 0.5 BZERO 200",
    "plain int16 BLANK",
    "plain float32 in a later extension",
    "plain NAXIS3=1 uint16",
    "plain NAXIS4=1 uint16",
    "RICE_1 NAXIS3=1 uint16",
    "plain cube of 3 planes",
    "RICE_1 cube of 3 planes",
    "strip 2048x1",
    "strip 2048x5",
    "strip 765x1",
    "strip 40x10",
]
"""The names `build_layouts` gives its layouts, in its order (known without writing them)."""


# What cannot be drawn.


def _small_float(directory: Path) -> np.ndarray:
    directory.mkdir(parents=True, exist_ok=True)
    return np.random.default_rng(1).normal(400.0, 20.0, (72, 96)).astype(np.float32)


def write_empty_primary(directory: Path) -> Path:
    """A FITS file whose only HDU holds no data."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "empty.fits"
    fits.PrimaryHDU().writeto(path, overwrite=True)
    return path


def write_empty_file(directory: Path) -> Path:
    """No HDU at all: zero bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "nothing.fits"
    path.write_bytes(b"")
    return path


def write_corrupt_tile(directory: Path) -> Path:
    """A RICE frame with a third of its compressed bytes overwritten by noise."""
    path = directory / "corrupt-tile.fits.fz"
    data = _small_float(directory)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(path, overwrite=True)
    with fits.open(path) as hdul:
        start, span = hdul[1].fileinfo()["datLoc"], hdul[1].fileinfo()["datSpan"]
    raw = bytearray(path.read_bytes())
    noise = np.random.default_rng(5).integers(0, 256, span // 3, dtype=np.uint8).tobytes()
    raw[start + span // 3 : start + span // 3 + len(noise)] = noise
    path.write_bytes(bytes(raw))
    return path


def write_lying_header(directory: Path) -> Path:
    """A plain frame whose NAXIS2 claims a hundred times the rows the file holds."""
    path = directory / "lying.fits"
    fits.PrimaryHDU(_small_float(directory)).writeto(path, overwrite=True)
    raw = path.read_bytes()
    card = b"NAXIS2  =                   72"
    assert raw.count(card) == 1
    path.write_bytes(raw.replace(card, b"NAXIS2  =                 7200"))
    return path


def write_lying_compressed_header(directory: Path) -> Path:
    """A RICE frame whose ZNAXIS2 claims more rows than its tiles hold."""
    path = directory / "lying.fits.fz"
    data = _small_float(directory)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(path, overwrite=True)
    raw = path.read_bytes()
    card = b"ZNAXIS2 =                   72"
    assert raw.count(card) == 1
    path.write_bytes(raw.replace(card, b"ZNAXIS2 =                 7200"))
    return path


def write_truncated(directory: Path) -> Path:
    """A RICE frame cut in the middle of its data."""
    path = directory / "truncated.fits.fz"
    data = _small_float(directory)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(path, overwrite=True)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


UNDRAWABLE: dict[str, Callable[[Path], Path]] = {
    "table only": lambda d: write_table_only(d, "table"),
    "empty primary": write_empty_primary,
    "empty file": write_empty_file,
    "corrupt tile": write_corrupt_tile,
    "header lying about the data size": write_lying_header,
    "compressed header lying about the data size": write_lying_compressed_header,
    "truncated": write_truncated,
}
"""Files with no image to draw, each written into the directory given."""
