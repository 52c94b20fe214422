"""Color alignment without the FITS files: other frames resampled onto the red grid in bands.

`alignment.align_to_reference` resamples the visual and blue frames onto the red frame's pixel
grid, bilinearly and at full resolution, and writes them out for fits2image, which then takes
its zscale samples from the resampled pixels. The resampling matters to the picture beyond
moving the stars: the interpolation smooths the sky noise, and with it the zscale limits and
the texture of the background. Resampling the 8-bit block averages on the reduced grid instead
was tried first; its visual and blue channels came out visibly darker than fits2image's (SSIM
0.79 to 0.89 on a 1024x1024 composite).

So the mapping, the fallbacks and the resampling here are `align_to_reference`'s own (the
same WCS fit, 25% least overlap, a mesh where no affine fits within `MAX_AFFINE_RESIDUAL`, the
frame's median where it does not reach), but the resampled frame is made one band of rows at
a time from the decompressed rows the first pass kept, never written to disk nor held whole.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.wcs import FITSFixedWarning
from PIL import Image

from thumbservice.adapters.rendering.engine.alignment import (
    MAX_AFFINE_RESIDUAL,
    MESH_CELL,
    MIN_OVERLAP,
    _Frame,
    _is_identity,
    _map_onto,
    _Mapping,
    _mesh,
    _pillow_affine,
    _usable_wcs,
)
from thumbservice.adapters.rendering.engine.framefile import FrameFile

logger = logging.getLogger(__name__)

Cells = list[tuple[tuple[int, int, int, int], tuple[float, ...]]]


@dataclass(frozen=True)
class Registration:
    """How each other frame maps onto the reference, or why the frames stay as they are.

    `mappings[i]` is None where frame i + 1 is already on the reference's grid.
    """

    aligned: bool
    note: str
    reference: _Frame | None = None
    frames: tuple[_Frame, ...] = ()
    mappings: tuple[_Mapping | None, ...] = ()

    def moves(self, index: int) -> bool:
        """Whether other frame `index` has to be resampled."""
        return self.aligned and self.mappings[index] is not None


def register(reference: FrameFile, others: Sequence[FrameFile]) -> Registration:
    """Fit the pixel mapping of each other frame onto the reference. Never raises.

    The frames' WCSs come from the headers the open frames already hold, as `_read_frame`
    would read them.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            ref = _as_frame(reference)
            frames = tuple(_as_frame(frame) for frame in others)
            for frame in (ref, *frames):
                if frame.wcs is None:
                    return _fall_back(f"no usable WCS in {frame.path.name}")
            mappings: list[_Mapping | None] = []
            for frame in frames:
                mapping = _map_onto(ref, frame)
                if mapping.coverage < MIN_OVERLAP:
                    return _fall_back(
                        f"frames do not overlap: {frame.path.name} covers "
                        f"{mapping.coverage:.0%} of {ref.path.name}"
                    )
                mappings.append(None if _is_identity(ref, frame, mapping) else mapping)
    except Exception as exc:  # whatever fails, the frames can still render unaligned
        return _fall_back(f"alignment failed: {type(exc).__name__}: {exc}")
    return Registration(True, "", ref, frames, tuple(mappings))


def _as_frame(frame: FrameFile) -> _Frame:
    header = frame.header
    wcs = _usable_wcs(header, frame.width, frame.height)
    return _Frame(frame.path, header, frame.width, frame.height, wcs)


def _fall_back(reason: str) -> Registration:
    logger.warning("Rendering color frames unaligned: %s", reason)
    return Registration(False, reason)


class BackgroundSample:
    """`alignment._background`'s strided sample of a frame, gathered from its row bands."""

    def __init__(self, height: int, width: int) -> None:
        self.step = max(1, int(math.sqrt(height * width / 250_000)))
        self._parts: list[np.ndarray] = []

    def add(self, start_row: int, rows: np.ndarray) -> None:
        first = -start_row % self.step
        self._parts.append(np.array(rows[first :: self.step, :: self.step], dtype=np.float32))

    def median(self) -> float:
        """The fill for where the frame does not reach: its median, 0 if it has none."""
        if not self._parts:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # The concatenation is a copy of its own: the median may sort it in place.
            median = float(np.nanmedian(np.concatenate(self._parts), overwrite_input=True))
        return median if math.isfinite(median) else 0.0


class Resampler:
    """Bands of another frame's pixels resampled onto the reference's grid, as Pillow would
    resample the whole frame: the source rows each band needs, transformed with the same
    coefficients shifted to the band.
    """

    def __init__(self, registration: Registration, index: int, fill: float) -> None:
        mapping = registration.mappings[index]
        assert registration.reference is not None and mapping is not None
        assert mapping.affine is not None
        self.reference = registration.reference
        self.frame = registration.frames[index]
        self.fill = fill
        self.width = self.reference.width
        self.height = self.reference.height
        self.cells: Cells | None = None
        self.coefficients: tuple[float, ...] = ()
        if mapping.residual <= MAX_AFFINE_RESIDUAL:
            self.coefficients = _pillow_affine(mapping.affine)
            logger.info(
                "Aligning %s onto %s: centre at (%.2f, %.2f) px, affine residual %.3f px",
                self.frame.path.name, self.reference.path.name, *mapping.shift,
                mapping.residual,
            )  # fmt: skip
        else:
            self.cells = _mesh(self.reference, self.frame)
            logger.info(
                "Aligning %s onto %s through a mesh of %d cells: affine residual %.3f px",
                self.frame.path.name, self.reference.path.name, len(self.cells),
                mapping.residual,
            )  # fmt: skip

    def band_rows(self, target: int) -> int:
        """Rows per band: a multiple of the mesh's cells, so that no cell is cut."""
        if self.cells is None:
            return max(1, target)
        return max(MESH_CELL, target // MESH_CELL * MESH_CELL)

    def _source_span(self, start: int, stop: int) -> tuple[int, int]:
        """The source rows the output rows `start` to `stop` read from, with a margin."""
        if self.cells is None:
            d, e, f = self.coefficients[3:]
            ys = [d * x + e * y + f for x in (0, self.width) for y in (start, stop)]
        else:
            ys = [
                quad[i]
                for box, quad in self.cells
                if box[1] < stop and box[3] > start
                for i in (1, 3, 5, 7)
            ]
        if not ys or not all(math.isfinite(y) for y in ys):
            return 0, self.frame.height
        low = max(0, math.floor(min(ys)) - 2)
        high = min(self.frame.height, math.ceil(max(ys)) + 3)
        return low, max(low, high)

    def samples(
        self, stride: int, source: Callable[[int, int], np.ndarray], target_rows: int
    ) -> np.ndarray:
        """The zscale samples of the resampled frame, sorted, without resampling all of it.

        fits2image takes the pixels at flat indices `stride, 2 * stride, ...` of the file
        `align_to_reference` writes. Each is one bilinear interpolation of the frame, computed
        here as Pillow computes it (`bilinear_filter32F`: the frame's float32 pixels in double
        precision, the edges clamped, the fill outside, float32 at the end), so that the
        limits are known before any band is resampled. `source(a, b)` gives rows a to b, read
        in bands of about `target_rows` output rows. Affine mappings only.
        """
        assert self.cells is None
        flat = np.arange(stride, self.width * self.height, stride, dtype=np.int64)
        out_y, out_x = np.divmod(flat, self.width)
        values = np.empty(flat.size, dtype=np.float32)
        step = self.band_rows(target_rows)
        for start in range(0, self.height, step):
            stop = min(start + step, self.height)
            chosen = np.flatnonzero((out_y >= start) & (out_y < stop))
            if chosen.size:
                low, high = self._source_span(start, stop)
                rows = source(low, high) if high > low else None
                values[chosen] = self._bilinear(out_x[chosen], out_y[chosen], rows, low)
        values.sort()
        return values

    def _bilinear(
        self, out_x: np.ndarray, out_y: np.ndarray, rows: np.ndarray | None, low: int
    ) -> np.ndarray:
        """Pillow's affine BILINEAR at output pixels (out_x, out_y); `rows` start at row `low`."""
        a, b, c, d, e, f = self.coefficients
        centre_x = out_x + 0.5
        centre_y = out_y + 0.5
        x_in = a * centre_x + b * centre_y + c
        y_in = d * centre_x + e * centre_y + f
        width, height = self.frame.width, self.frame.height
        inside = (x_in >= 0.0) & (x_in < width) & (y_in >= 0.0) & (y_in < height)
        result = np.full(out_x.shape, np.float32(self.fill), dtype=np.float32)
        if rows is None or not inside.any():
            return result
        pixels: np.ndarray = rows
        x_in, y_in = x_in[inside] - 0.5, y_in[inside] - 0.5
        x0, y0 = np.floor(x_in), np.floor(y_in)
        dx, dy = x_in - x0, y_in - y0
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        left = np.clip(x0, 0, width - 1)
        right = np.clip(x0 + 1, 0, width - 1)
        # Below the last row Pillow repeats the upper row's value, not the clamped row.
        below = (y0 + 1 >= 0) & (y0 + 1 < height)
        upper = np.clip(y0, 0, height - 1) - low
        lower = np.where(below, y0 + 1, y0).clip(0, height - 1) - low

        def row(index: np.ndarray) -> np.ndarray:
            first = pixels[index, left].astype(np.float64)
            return first + (pixels[index, right].astype(np.float64) - first) * dx

        v1 = row(upper)
        v2 = np.where(below, row(lower), v1)
        result[inside] = (v1 + (v2 - v1) * dy).astype(np.float32)
        return result

    def band(
        self,
        start: int,
        stop: int,
        source: Callable[[int, int], np.ndarray],
        scratch: np.ndarray | None = None,
    ) -> np.ndarray:
        """Output rows `start` to `stop`, float32; `source(a, b)` gives the frame's rows a to b.

        `scratch`, a float32 array at least as large, may hold the result (overwritten by the
        next band): bands that reuse it find their memory already mapped.
        """
        low, high = self._source_span(start, stop)
        size = (self.width, stop - start)
        if high <= low:
            return np.full((stop - start, self.width), self.fill, dtype=np.float32)
        rows = np.ascontiguousarray(source(low, high), dtype=np.float32)
        if self.cells is None:
            a, b, c, d, e, f = self.coefficients
            shifted = (a, b, c + b * start, d, e, f + e * start - low)
            moved = _affine_into_array(rows, size, shifted, self.fill, scratch)
            if moved is not None:
                return moved
            image = Image.fromarray(rows).transform(
                size,
                Image.Transform.AFFINE,
                shifted,
                resample=Image.Resampling.BILINEAR,
                fillcolor=self.fill,
            )
        else:
            cells = [
                (
                    (box[0], box[1] - start, box[2], box[3] - start),
                    tuple(v - low if i % 2 else v for i, v in enumerate(quad)),
                )
                for box, quad in self.cells
                if box[1] >= start and box[3] <= stop
            ]
            image = Image.fromarray(rows).transform(
                size,
                Image.Transform.MESH,
                cells,
                resample=Image.Resampling.BILINEAR,
                fillcolor=self.fill,
            )
        return np.asarray(image, dtype=np.float32)


_MAPPED_TRANSFORM = True
"""Whether this Pillow's core transforms float32 images mapped onto numpy arrays."""


def _affine_into_array(
    rows: np.ndarray,
    size: tuple[int, int],
    coefficients: tuple[float, ...],
    fill: float,
    scratch: np.ndarray | None = None,
) -> np.ndarray | None:
    """`Image.transform(size, AFFINE, coefficients, BILINEAR, fillcolor=fill)` of the float32
    `rows`, computed by the same Pillow core call but on images mapped onto numpy arrays.

    `Image.transform` copies the rows into a Pillow image, makes a new one for the output
    and `np.asarray` copies that out again, read-only: on a 2048x2048 frame in bands that
    cost about as much as the interpolation itself. Here Pillow reads the rows and writes
    the output array in place, filled beforehand as `Image.new` fills it. None where this
    Pillow does not allow it, and from then on.
    """
    global _MAPPED_TRANSFORM
    if not _MAPPED_TRANSFORM:
        return None
    width, height = size
    if scratch is not None and scratch.shape[0] >= height and scratch.shape[1:] == (width,):
        output = scratch[:height]
        output.fill(fill)
    else:
        output = np.full((height, width), fill, dtype=np.float32)
    try:
        core: Any = Image.core
        source = core.map_buffer(rows, (rows.shape[1], rows.shape[0]), "raw", 0, ("F", 0, 1))
        target = core.map_buffer(output, size, "raw", 0, ("F", 0, 1))
        target.transform(
            (0, 0, width, height),
            source,
            Image.Transform.AFFINE,
            coefficients[:6],
            Image.Resampling.BILINEAR,
            False,
        )
    except Exception as err:  # a Pillow whose core differs: its public path
        logger.info("Resampling through Image.transform: %s: %s", type(err).__name__, err)
        _MAPPED_TRANSFORM = False
        return None
    return output
