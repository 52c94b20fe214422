"""Pillow's thumbnail, split so that its first step can run on row chunks of the unoriented frame.

fits2image turns the scaled 8-bit frame north-up and calls `Image.thumbnail(size, LANCZOS)`.
With its default `reducing_gap=2.0`, Pillow first `reduce`s the image by an integer factor per
axis, `int(side / final_side / 2)`: block averages over a grid anchored at the image's origin,
the partial blocks at the far edges included, each rounded as `((sum + n // 2) * m) >> 24`
with `m = (uint32)(2**32 / (256 * n))` computed in single precision. It then resizes the
reduced image with LANCZOS over the fractional box `(0, 0, width / fx, height / fy)`.

Here the blocks are summed on the frame as it lies in the file, before it is turned. The
grid is anchored at the origin of the turned image, so along an axis that the orientation
reverses the partial block sits at the start of the unoriented axis (`AxisGrid`). Turning the
small array of block averages the same way then gives Pillow's reduced image exactly, and the
LANCZOS step is Pillow's own, called with the same box.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from fits2image.orientation import orient_array
from PIL import Image

REDUCING_GAP = 2.0
"""`Image.thumbnail`'s default."""

Transform = tuple[bool, int] | None
"""fits2image's orientation: (mirror, quarter turns), or None for the vertical-flip fallback."""


def orient(array: np.ndarray, transform: Transform) -> np.ndarray:
    """Turn an array laid out as `Image.fromarray` takes it, exactly as fits2image does."""
    return orient_array(array, transform, flip_v=True)


@dataclass(frozen=True)
class AxisMap:
    """Where each axis of the oriented image comes from in the unoriented frame.

    `source[i]` is the unoriented axis (0 rows, 1 columns) that oriented axis `i` runs along,
    and `reversed[i]` whether it runs along it backwards.
    """

    source: tuple[int, int]
    reversed: tuple[bool, bool]

    @classmethod
    def of(cls, transform: Transform) -> AxisMap:
        """Read the map off the transform applied to a small array of flat indices."""
        probe = orient(np.arange(6).reshape(2, 3), transform)
        origin = int(probe[0, 0])
        sources: list[int] = []
        backwards: list[bool] = []
        for step in (int(probe[1, 0]) - origin, int(probe[0, 1]) - origin):
            axis = 0 if abs(step) == 3 else 1  # a step of a row in the flat indices is 3
            sources.append(axis)
            backwards.append(step < 0)
        return cls((sources[0], sources[1]), (backwards[0], backwards[1]))

    def oriented_shape(self, height: int, width: int) -> tuple[int, int]:
        shape = (height, width)
        return shape[self.source[0]], shape[self.source[1]]

    def unoriented_view(self, oriented: np.ndarray) -> np.ndarray:
        """A view of the 2-D `oriented` laid out as the unoriented frame: `orient` of it is
        `oriented` again, so values written to it land where orientation would put them."""
        view = oriented if self.source == (0, 1) else oriented.T
        # Unoriented axis self.source[i] is oriented axis i, reversed or not.
        flips = tuple(
            slice(None, None, -1) if self.reversed[self.source.index(axis)] else slice(None)
            for axis in (0, 1)
        )
        return view[flips]


def thumbnail_size(size: tuple[int, int], wanted: tuple[int, int]) -> tuple[int, int] | None:
    """The size `Image.thumbnail(wanted)` gives an image of `size`, or None to leave it alone.

    Pillow's own rule, aspect kept and each side rounded to the nearer of floor and ceil.
    """
    x, y = math.floor(wanted[0]), math.floor(wanted[1])
    width, height = size
    if x >= width and y >= height:
        return None

    def round_aspect(number: float, key: Any) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    aspect = width / height
    if x / y >= aspect:
        x = round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


def reduce_factors(size: tuple[int, int], final: tuple[int, int]) -> tuple[int, int]:
    """Pillow's `resize(..., reducing_gap=2.0)` reduction factors (x, y)."""
    factor_x = int(size[0] / final[0] / REDUCING_GAP) or 1
    factor_y = int(size[1] / final[1] / REDUCING_GAP) or 1
    return factor_x, factor_y


@dataclass(frozen=True)
class AxisGrid:
    """The block edges along one axis of the unoriented frame, inside [start, stop)."""

    edges: tuple[int, ...]
    factor: int

    @classmethod
    def anchored(cls, start: int, stop: int, factor: int, from_end: bool) -> AxisGrid:
        """Blocks of `factor` pixels counted from `start`, or from `stop` when `from_end`.

        A partial block falls at the end the grid is not anchored at.
        """
        count = -(-(stop - start) // factor)
        if from_end:
            edges = stop - factor * np.arange(count, -1, -1, dtype=np.int64)
            edges[0] = start
        else:
            edges = start + factor * np.arange(count + 1, dtype=np.int64)
            edges[-1] = stop
        return cls(tuple(np.maximum(edges, start).tolist()), factor)

    @functools.cached_property
    def sizes(self) -> np.ndarray:
        return np.diff(np.asarray(self.edges, dtype=np.int64))

    @property
    def count(self) -> int:
        return len(self.edges) - 1

    @property
    def start(self) -> int:
        return self.edges[0]

    @property
    def stop(self) -> int:
        return self.edges[-1]

    def centre_origin(self) -> float:
        """`o` in `centre of block j = factor * j + o`, true of every full block.

        Pixel centres are at integers. Only a partial block's centre is off this lattice.
        """
        sizes = self.sizes
        if self.count > 1 and sizes[0] != self.factor:
            # The partial block comes first: block 1 starts at edges[1].
            return self.edges[1] - self.factor + (self.factor - 1) / 2
        return self.edges[0] + (self.factor - 1) / 2

    def bands(self, target_rows: int) -> list[tuple[int, int, int, int]]:
        """Runs of whole blocks of equal size: (first block, last block + 1, start, stop).

        Each run spans about `target_rows` rows, so row chunks line up with the blocks.
        """
        sizes = self.sizes
        per_band = max(1, target_rows // max(1, self.factor))
        # Runs of equal sizes (all but a partial block at either end), cut every per_band.
        changes = np.flatnonzero(np.diff(sizes)) + 1
        starts = [0, *changes.tolist()]
        stops = [*changes.tolist(), self.count]
        runs: list[tuple[int, int, int, int]] = []
        for first, last in zip(starts, stops, strict=True):
            for block in range(first, last, per_band):
                end = min(block + per_band, last)
                runs.append((block, end, self.edges[block], self.edges[end]))
        return runs


def block_grids(
    height: int,
    width: int,
    axes: AxisMap,
    factors: tuple[int, int],
    region: tuple[int, int, int, int] | None = None,
) -> tuple[AxisGrid, AxisGrid]:
    """The row and column block grids on the unoriented frame.

    `factors` are Pillow's (x, y) on the oriented image, and `region` its part in play, (top,
    left, height, width) in oriented pixels. The grid of each axis is anchored where the
    oriented image's origin falls.
    """
    lengths = (height, width)
    oriented = axes.oriented_shape(height, width)
    top, left, region_height, region_width = region or (0, 0, *oriented)
    spans = ((top, top + region_height), (left, left + region_width))
    oriented_factors = (factors[1], factors[0])
    grids: dict[int, AxisGrid] = {}
    for axis in (0, 1):
        source = axes.source[axis]
        length = lengths[source]
        start, stop = spans[axis]
        if axes.reversed[axis]:
            start, stop = length - stop, length - start
        grids[source] = AxisGrid.anchored(
            start, stop, oriented_factors[axis], from_end=axes.reversed[axis]
        )
    return grids[0], grids[1]


def _pillow_multiplier(counts: np.ndarray) -> np.ndarray:
    """Pillow's `division_UINT32(n, 8)`: (uint32)((float)2**32 / (float)(256 * n))."""
    dividend = (np.asarray(counts, dtype=np.float32) * np.float32(256)).astype(np.float32)
    return (np.float32(4294967296.0) / dividend).astype(np.uint32)


def sum_dtype(block_pixels: int) -> type[np.unsignedinteger[Any]]:
    """The narrowest unsigned type that holds a sum of `block_pixels` 8-bit values."""
    if block_pixels == 1:
        return np.uint8
    top = 255 * block_pixels
    if top <= np.iinfo(np.uint16).max:
        return np.uint16
    if top <= np.iinfo(np.uint32).max:
        return np.uint32
    return np.uint64


class BlockSums:
    """Sums of 8-bit values over the blocks of a row grid and a column grid."""

    def __init__(self, rows: AxisGrid, cols: AxisGrid, storage: np.ndarray | None = None) -> None:
        """`storage`, for blocks of one pixel, is where the values go (uint8, one per block)."""
        self.rows = rows
        self.cols = cols
        self.dtype = sum_dtype(rows.factor * cols.factor)
        shape = (rows.count, cols.count)
        if storage is not None and storage.shape == shape and storage.dtype == self.dtype:
            self.sums = storage
        else:
            self.sums = np.zeros(shape, dtype=self.dtype)
        self._col_starts = np.asarray(cols.edges[:-1], dtype=np.intp) - cols.start

    def add(self, first_block: int, values: np.ndarray) -> None:
        """Add the 8-bit rows of whole row blocks from `first_block` on, all of one size.

        `values` holds the frame's full width: the column grid picks its part.
        """
        band = values[:, self.cols.start : self.cols.stop]
        height = self.rows.sizes[first_block]
        blocks = band.shape[0] // int(height)
        if height == 1:
            rows = band
        else:
            rows = band.reshape(blocks, int(height), band.shape[1]).sum(axis=1, dtype=self.dtype)
        if self.cols.factor == 1:
            sums = rows
        else:
            sums = np.add.reduceat(rows, self._col_starts, axis=1, dtype=self.dtype)
        self.sums[first_block : first_block + blocks] = sums

    def target(self, first_block: int, rows: int) -> np.ndarray | None:
        """Where the 8-bit values of `rows` rows from `first_block` on can be written directly
        (the grid's columns only), or None: only blocks of one pixel are the values themselves.
        """
        if self.rows.factor != 1 or self.cols.factor != 1:
            return None
        return self.sums[first_block : first_block + rows]

    def counts(self) -> np.ndarray:
        return np.outer(self.rows.sizes, self.cols.sizes)

    def rounded(self) -> np.ndarray:
        """The block averages as Pillow's `reduce` rounds them, uint8.

        Blocks of one pixel are the sums themselves, not a copy of them.
        """
        if self.rows.factor == 1 and self.cols.factor == 1:
            return self.sums
        counts = self.counts().astype(np.uint64)
        total = self.sums.astype(np.uint64) + counts // 2
        return ((total * _pillow_multiplier(counts).astype(np.uint64)) >> 24).astype(np.uint8)

    def means(self) -> np.ndarray:
        """The block averages unrounded, float32."""
        return (self.sums / self.counts()).astype(np.float32)


def finish(
    reduced: Image.Image,
    oriented_size: tuple[int, int],
    factors: tuple[int, int],
    final: tuple[int, int] | None,
) -> Image.Image:
    """Pillow's LANCZOS step of `thumbnail` on the image `reduce` gave it, with the same box."""
    if final is None or final == oriented_size:
        return reduced
    box = (0.0, 0.0, oriented_size[0] / factors[0], oriented_size[1] / factors[1])
    return reduced.resize(final, Image.Resampling.LANCZOS, box=box)
