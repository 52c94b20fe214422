"""Put the frames of a color composite on one pixel grid before fits2image stacks them.

The red, visual and blue frames of one request are separate exposures, and the telescope does
not return to exactly the same pointing between them: they typically land a few pixels apart,
sometimes with a small rotation. fits2image stacks the three channels pixel for pixel, so
without this every star gets colored fringes. Each frame's WCS says where it points, so the
other frames are resampled onto the reference frame's pixel grid through the mapping their
WCSs imply. When that cannot be done safely the original frames are rendered as they are.

This runs inside a render worker process: it is synchronous and holds at most two full-size
float32 copies of one frame at a time.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from PIL import Image

logger = logging.getLogger(__name__)

MIN_OVERLAP = 0.25
"""Least fraction of the reference that another frame must cover to be aligned onto it."""

MAX_AFFINE_RESIDUAL = 0.25
"""Largest error, in pixels, of the affine fit before the mapping is applied piecewise."""

FIT_GRID = 17
"""Reference pixels sampled along each axis to fit the mapping and estimate the overlap."""

MESH_CELL = 64
"""Side, in pixels, of the cells over which a distorted mapping is taken as bilinear."""

IDENTITY_TOLERANCE = 1e-3
"""A frame whose pixels map onto the reference's within this many pixels is used as it is."""

ROUND_TRIP_TOLERANCE = 0.01
"""Largest pixel -> world -> pixel error, in pixels, of a WCS that is usable."""

WRITE_BAND_ROWS = 256

STRUCTURAL_KEYWORDS = frozenset(
    {
        "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS",
        "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "EXTVER", "EXTLEVEL",
    }
)  # fmt: skip

EXPOSURE_KEYWORDS = ("FILTER", "EXPTIME", "DATE-OBS", "MJD-OBS", "SATURATE", "GAIN", "BUNIT")
"""Cards an aligned frame keeps from its own exposure: they describe its pixel values."""


@dataclass(frozen=True)
class AlignmentReport:
    """What `align_to_reference` did.

    `shifts` holds, for each other frame in order, where that frame's centre lies on the
    reference's pixel grid relative to the reference's centre, (dx, dy) in pixels along FITS
    axes 1 and 2, from the WCS. A frame pointed so that the stars land `(ox, oy)` pixels
    further along its axes than on the reference has its centre at about `(-ox, -oy)`. It is
    empty when a WCS was missing, and NaN where a centre cannot be projected.
    """

    aligned: bool
    reason: str
    shifts: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class _Frame:
    path: Path
    header: fits.Header
    width: int
    height: int
    wcs: WCS | None


@dataclass(frozen=True)
class _Mapping:
    """How the reference's pixels map onto one other frame's pixels."""

    coverage: float
    shift: tuple[float, float]
    affine: np.ndarray | None  # 2x3, [[a, b, c], [d, e, f]]: other = affine @ (x, y, 1)
    residual: float


def align_to_reference(
    reference: Path, others: Sequence[Path], workdir: Path
) -> tuple[list[Path], AlignmentReport]:
    """Return [reference, aligned_other_1, ...] paths ready for fits_to_jpg(color=True).

    Each other frame is resampled onto the reference's pixel grid and written to
    `workdir / f"aligned-{i}.fits"` (i from 1) as a float32 primary HDU carrying the
    reference's header, WCS included, so fits2image orients all of them identically; only
    the cards in `EXPOSURE_KEYWORDS` are the frame's own. A frame whose pixel
    grid already matches the reference's is returned as it is. When any frame lacks a usable
    WCS, a frame covers less than `MIN_OVERLAP` of the reference, or anything fails, the
    original paths come back with `aligned=False` and the reason; this never raises.
    """
    reference = Path(reference)
    other_paths = [Path(other) for other in others]
    workdir = Path(workdir)
    originals = [reference, *other_paths]
    shifts: tuple[tuple[float, float], ...] = ()
    written: list[Path] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            ref = _read_frame(reference)
            frames = [_read_frame(path) for path in other_paths]
            for frame in (ref, *frames):
                if frame.wcs is None:
                    return _fall_back(originals, f"no usable WCS in {frame.path.name}", shifts)
            mappings = [_map_onto(ref, frame) for frame in frames]
            shifts = tuple(mapping.shift for mapping in mappings)
            for frame, mapping in zip(frames, mappings, strict=True):
                if mapping.coverage < MIN_OVERLAP:
                    reason = (
                        f"frames do not overlap: {frame.path.name} covers "
                        f"{mapping.coverage:.0%} of {reference.name}"
                    )
                    return _fall_back(originals, reason, shifts)
            aligned = [reference]
            for index, (frame, mapping) in enumerate(zip(frames, mappings, strict=True), 1):
                if _is_identity(ref, frame, mapping):
                    logger.info("%s is already on the grid of %s", frame.path.name, reference.name)
                    aligned.append(frame.path)
                    continue
                target = workdir / f"aligned-{index}.fits"
                written.append(target)
                _resample(ref, frame, mapping, target)
                aligned.append(target)
    except Exception as exc:  # whatever fails, the frames can still render unaligned
        for path in written:
            path.unlink(missing_ok=True)
        return _fall_back(originals, f"alignment failed: {type(exc).__name__}: {exc}", shifts)
    return aligned, AlignmentReport(aligned=True, reason="", shifts=shifts)


def _fall_back(
    originals: list[Path], reason: str, shifts: tuple[tuple[float, float], ...]
) -> tuple[list[Path], AlignmentReport]:
    logger.warning(
        "Rendering color frames unaligned: %s (%s)",
        reason,
        ", ".join(path.name for path in originals),
    )
    return list(originals), AlignmentReport(aligned=False, reason=reason, shifts=shifts)


def _find_data_hdu(hdul: fits.HDUList) -> Any:
    """The first HDU holding a non-empty 2-D image, as fits2image picks it."""
    for hdu in hdul:
        shape = getattr(hdu, "shape", ())
        if len(shape) == 2 and all(shape):
            return hdu
    raise ValueError("no 2-D image data")


def _merged_header(hdul: fits.HDUList, hdu: Any) -> fits.Header:
    """The data HDU's header, completed with primary cards it lacks, as fits2image reads it."""
    primary = hdul[0]
    if hdu is primary:
        return hdu.header.copy()
    merged = primary.header.copy()
    merged.update(hdu.header)
    return merged


def _read_frame(path: Path) -> _Frame:
    """A frame's header, shape and WCS, without decoding its pixels."""
    with fits.open(path) as hdul:
        hdu = _find_data_hdu(hdul)
        height, width = hdu.shape
        header = _merged_header(hdul, hdu)
    return _Frame(path, header, int(width), int(height), _usable_wcs(header, width, height))


def _read_pixels(path: Path) -> np.ndarray:
    """The frame's pixels as a C-contiguous native float32 array."""
    with fits.open(path) as hdul:
        data = _find_data_hdu(hdul).data
        return np.ascontiguousarray(data, dtype=np.float32)


def _usable_wcs(header: fits.Header, width: int, height: int) -> WCS | None:
    """The header's celestial WCS, or None if it is missing or does not invert."""
    try:
        wcs = WCS(header, naxis=2)
        if not wcs.has_celestial or not all(str(ctype).strip() for ctype in wcs.wcs.ctype):
            return None
        pixels = np.array(
            [[(width - 1) / 2, (height - 1) / 2], [0, 0], [width - 1, 0],
             [0, height - 1], [width - 1, height - 1]],
            dtype=np.float64,
        )  # fmt: skip
        with np.errstate(all="ignore"):
            world = wcs.all_pix2world(pixels, 0)
            back = wcs.all_world2pix(world, 0)
        if not np.all(np.isfinite(back)) or np.max(np.abs(back - pixels)) > ROUND_TRIP_TOLERANCE:
            return None
    except Exception:  # a WCS that cannot be built or inverted is not usable
        return None
    return wcs


def _project(source: WCS, target: WCS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pixels (0-based, pixel centres at integers) of `source` as pixels of `target`, Nx2."""
    with np.errstate(all="ignore"):
        world = source.all_pix2world(np.column_stack([x, y]), 0)
        return np.asarray(target.all_world2pix(world, 0, quiet=True), dtype=np.float64)


def _map_onto(ref: _Frame, frame: _Frame) -> _Mapping:
    assert ref.wcs is not None and frame.wcs is not None
    xs = np.linspace(0.0, ref.width - 1.0, FIT_GRID)
    ys = np.linspace(0.0, ref.height - 1.0, FIT_GRID)
    gx, gy = (grid.ravel() for grid in np.meshgrid(xs, ys))
    mapped = _project(ref.wcs, frame.wcs, gx, gy)
    finite = np.all(np.isfinite(mapped), axis=1)
    inside = (
        finite
        & (mapped[:, 0] >= -0.5)
        & (mapped[:, 0] < frame.width - 0.5)
        & (mapped[:, 1] >= -0.5)
        & (mapped[:, 1] < frame.height - 0.5)
    )
    coverage = float(np.mean(inside))

    centre = _project(
        frame.wcs, ref.wcs, np.array([(frame.width - 1) / 2]), np.array([(frame.height - 1) / 2])
    )[0]
    shift = (
        float(centre[0] - (ref.width - 1) / 2),
        float(centre[1] - (ref.height - 1) / 2),
    )

    if coverage < MIN_OVERLAP:
        return _Mapping(coverage, shift, None, math.inf)
    design = np.column_stack([gx[finite], gy[finite], np.ones(int(finite.sum()))])
    solution, *_ = np.linalg.lstsq(design, mapped[finite], rcond=None)
    affine = solution.T
    residual = float(np.max(np.hypot(*(design @ solution - mapped[finite]).T)))
    return _Mapping(coverage, shift, affine, residual)


def _is_identity(ref: _Frame, frame: _Frame, mapping: _Mapping) -> bool:
    if (frame.width, frame.height) != (ref.width, ref.height) or mapping.affine is None:
        return False
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    corners = np.array(
        [[0, 0, 1], [ref.width, 0, 1], [0, ref.height, 1], [ref.width, ref.height, 1]]
    )
    error = corners @ (mapping.affine - identity).T
    return (
        mapping.residual < IDENTITY_TOLERANCE and float(np.max(np.abs(error))) < IDENTITY_TOLERANCE
    )


def _pillow_affine(affine: np.ndarray) -> tuple[float, ...]:
    """The affine as Image.transform takes it.

    Pillow puts pixel centres at half-integers: it samples the output pixel (i, j) at
    (i + 0.5, j + 0.5) and reads source pixel (k, l) at (k + 0.5, l + 0.5). With pixel centres
    at integers, other = A @ ref + t becomes other' = A @ ref' + t + 0.5 - A @ (0.5, 0.5).
    """
    linear = affine[:, :2]
    offset = affine[:, 2] + 0.5 - linear @ np.array([0.5, 0.5])
    return (
        float(linear[0, 0]), float(linear[0, 1]), float(offset[0]),
        float(linear[1, 0]), float(linear[1, 1]), float(offset[1]),
    )  # fmt: skip


def _mesh(ref: _Frame, frame: _Frame) -> list[tuple[tuple[int, int, int, int], tuple[float, ...]]]:
    """Cells of the reference grid with the quadrilateral of the other frame each comes from.

    The corners are projected exactly through both WCSs; within a cell Pillow interpolates the
    mapping bilinearly. Corners are pixel edges, which in Pillow's coordinates are integers.
    """
    assert ref.wcs is not None and frame.wcs is not None
    xs = np.unique(np.append(np.arange(0, ref.width, MESH_CELL), ref.width))
    ys = np.unique(np.append(np.arange(0, ref.height, MESH_CELL), ref.height))
    gx, gy = np.meshgrid(xs, ys)
    mapped = _project(ref.wcs, frame.wcs, gx.ravel() - 0.5, gy.ravel() - 0.5) + 0.5
    if not np.all(np.isfinite(mapped)):
        raise ValueError(f"the reference does not project onto {frame.path.name} everywhere")
    corners = mapped.reshape(len(ys), len(xs), 2)
    cells = []
    for row in range(len(ys) - 1):
        for col in range(len(xs) - 1):
            box = (int(xs[col]), int(ys[row]), int(xs[col + 1]), int(ys[row + 1]))
            quad = (
                *corners[row, col],  # north-west
                *corners[row + 1, col],  # south-west
                *corners[row + 1, col + 1],  # south-east
                *corners[row, col + 1],  # north-east
            )
            cells.append((box, tuple(float(value) for value in quad)))
    return cells


def _background(pixels: np.ndarray) -> float:
    """The frame's median, from a strided sample, to fill where it does not reach."""
    step = max(1, int(math.sqrt(pixels.size / 250_000)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = float(np.nanmedian(pixels[::step, ::step]))
    return median if math.isfinite(median) else 0.0


def _resample(ref: _Frame, frame: _Frame, mapping: _Mapping, target: Path) -> None:
    assert mapping.affine is not None
    pixels = _read_pixels(frame.path)
    fill = _background(pixels)
    source = Image.fromarray(pixels)  # a copy: Pillow maps no float32 buffer
    del pixels
    if source.mode != "F":
        raise TypeError(f"expected a float32 image, Pillow made mode {source.mode}")
    size = (ref.width, ref.height)
    if mapping.residual <= MAX_AFFINE_RESIDUAL:
        logger.info(
            "Aligning %s onto %s: centre at (%.2f, %.2f) px, affine residual %.3f px",
            frame.path.name, ref.path.name, *mapping.shift, mapping.residual,
        )  # fmt: skip
        resampled = source.transform(
            size,
            Image.Transform.AFFINE,
            _pillow_affine(mapping.affine),
            resample=Image.Resampling.BILINEAR,
            fillcolor=fill,
        )
    else:
        cells = _mesh(ref, frame)
        logger.info(
            "Aligning %s onto %s: centre at (%.2f, %.2f) px, affine residual %.3f px exceeds "
            "%.2f px, resampling through a mesh of %d cells",
            frame.path.name, ref.path.name, *mapping.shift, mapping.residual,
            MAX_AFFINE_RESIDUAL, len(cells),
        )  # fmt: skip
        resampled = source.transform(
            size,
            Image.Transform.MESH,
            cells,
            resample=Image.Resampling.BILINEAR,
            fillcolor=fill,
        )
    del source
    _write_float32(resampled, _aligned_header(ref, frame), target)


def _aligned_header(ref: _Frame, frame: _Frame) -> fits.Header:
    """The reference's header for a float32 primary HDU on its grid, with `frame`'s exposure."""
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = ref.width
    header["NAXIS2"] = ref.height
    header.extend(
        card
        for card in ref.header.cards
        if card.keyword not in STRUCTURAL_KEYWORDS and not card.keyword.startswith("NAXIS")
    )
    for keyword in EXPOSURE_KEYWORDS:
        if keyword in frame.header:
            header[keyword] = frame.header[keyword]
        elif keyword in header:
            del header[keyword]
    header.add_history(f"Resampled from {frame.path.name} onto the pixel grid of {ref.path.name}")
    return header


def _write_float32(image: Image.Image, header: fits.Header, target: Path) -> None:
    """Stream the image out in bands of rows, so no second full-size copy is made."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    width, height = image.size
    try:
        stream = fits.StreamingHDU(partial, header)
        try:
            for top in range(0, height, WRITE_BAND_ROWS):
                band = image.crop((0, top, width, min(top + WRITE_BAND_ROWS, height)))
                stream.write(np.asarray(band, dtype=np.float32))
        finally:
            stream.close()
        if not stream.writecomplete:
            raise OSError(f"short write of {target.name}")
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
