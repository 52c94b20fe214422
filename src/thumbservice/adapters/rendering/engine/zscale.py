"""fits2image's scaling, one row chunk at a time: zscale samples, limits, the 8-bit map, median.

fits2image scales a whole frame at once (`auto_scale_data`, `linear_scale`,
`recalculate_median`), in float64. The functions here give the same 8-bit values from chunks
of rows, in float32, so that no full-resolution copy of the frame is ever held:

* the samples are the pixels `extract_samples` takes, at flat indices `stride, 2 * stride, ...`
  of the unoriented frame, picked out of each chunk as it goes by (`SampleCollector`);
* the limits are fits2image's own: the samples' median below, `calc_zscale_min_max`'s upper
  limit above, computed by fits2image's function on the same samples;
* `GammaMap` clips, scales, rounds and looks up the gamma table like `linear_scale`. It works
  in float32 on `(value - zmin) * scale`, which keeps the cancellation out of the product:
  against fits2image's float64 `value * scale - zmin * scale`, a value within about 1e-5 of
  half a level can round to the neighbouring level before the gamma table (4 of 4,194,304
  pixels of a generated 2048x2048 frame, up to 5 in 100,000 on others). NaN and infinite
  pixels, which fits2image cannot render at all, are left out of the samples and drawn black;
* `median_stretch` is `recalculate_median` as a table over the 256 possible 8-bit values. The
  median and percentile it needs come from a histogram of the whole 8-bit frame, which is
  exact for 8-bit values: the same order statistics, interpolated as numpy does.
"""

from __future__ import annotations

import logging

import numpy as np
from fits2image.scaling import DEFAULT_GAMMA_LUT, calc_zscale_min_max

logger = logging.getLogger(__name__)

NSAMPLES = 2000
"""fits2image's `extract_samples` default."""

CONTRAST = 0.1
"""fits2image's `fits_to_img` default."""

FIT_ITERATIONS = 1
"""`auto_scale_data`'s `max_fit_iterations`."""

EQUAL_LIMITS = 1e-9
"""Limits closer than this, relative to zmin, are taken as equal."""

GAMMA_TABLE = np.asarray(DEFAULT_GAMMA_LUT, dtype=np.uint8)
"""fits2image's gamma 2.5 table from the rounded 0-255 level to the 8-bit value."""


def sample_stride(naxis1: int, naxis2: int, nsamples: int = NSAMPLES) -> int:
    """The distance between samples in the flattened frame, as `extract_samples` takes it.

    fits2image reads NAXIS1 and NAXIS2 from the header. Below `nsamples` pixels its stride is
    0 and it fails; here every pixel is then a sample.
    """
    return max(1, int((naxis1 * naxis2) / nsamples))


class SampleCollector:
    """Collects `extract_samples`' pixels from row chunks of a frame `width` pixels wide."""

    def __init__(self, width: int, stride: int) -> None:
        self.width = width
        self.stride = stride
        self._parts: list[np.ndarray] = []

    def add(self, start_row: int, rows: np.ndarray) -> None:
        """Take the samples that fall in `rows`, the frame's rows from `start_row` on."""
        first = start_row * self.width
        stop = first + rows.shape[0] * self.width
        # Sample k sits at flat index k * stride, k >= 1.
        k0 = max(1, -(-first // self.stride))
        indices = np.arange(k0 * self.stride, stop, self.stride, dtype=np.int64) - first
        if indices.size:
            self._parts.append(rows.reshape(-1)[indices].copy())

    def samples(self) -> np.ndarray:
        """The samples, sorted, in the data's own dtype as fits2image sorts them."""
        if not self._parts:
            return np.empty(0)
        samples = np.concatenate(self._parts)
        samples.sort()
        return samples


def zscale_limits(samples: np.ndarray) -> tuple[float, float]:
    """The limits `auto_scale_data` passes to `linear_scale`: (median, zscale's zmax).

    Non-finite samples are left out: fits2image keeps them, and then fails. With no finite
    sample at all the frame has nothing to show, and gets the limits of an all-zero frame.
    """
    if samples.dtype.kind == "f":
        samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return 0.0, 0.0
    median = np.median(samples)
    _, zmax, _ = calc_zscale_min_max(samples, contrast=CONTRAST, iterations=FIT_ITERATIONS)
    return float(median), float(zmax)


class GammaMap:
    """`linear_scale` as a map from float32 row chunks to the final 8-bit values."""

    def __init__(self, zmin: float, zmax: float) -> None:
        if abs(zmax - zmin) <= EQUAL_LIMITS * max(1.0, abs(zmin)):
            # As linear_scale does when they are exactly equal, rather than divide by zero.
            # A constant frame's line fit can leave zmax a rounding error off zmin, which
            # fits2image takes as a range: its scale then overflows the gamma table.
            logger.info("zscale limits are equal (%s): widening them by 1", zmin)
            zmax, zmin = zmin + 1, zmin - 1
        self.zmin = np.float32(zmin)
        self.scale = np.float32(255.0 / (float(zmax) - float(zmin)))
        # linear_scale clips with numpy's clip, min(max(v, zmin), zmax): with the limits the
        # wrong way round every value becomes zmax, which scales to 255.
        self.reversed = zmax < zmin

    def apply(
        self, values: np.ndarray, may_be_nan: bool = True, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The 8-bit values of a float32 chunk, which is used as scratch space if writable.

        `may_be_nan` is False for data converted from integers, which saves the check. With
        `out` (uint8, of the chunk's shape) the values are written there.
        """
        finite = None
        if may_be_nan:
            # The sum is not finite when a value is not (or, harmlessly, when it overflows).
            with np.errstate(invalid="ignore", over="ignore"):
                total = np.add.reduce(values, axis=None)
            if not np.isfinite(total):
                finite = np.isfinite(values)
        scaled = values if values.flags.writeable else np.empty_like(values)
        if self.reversed:
            scaled.fill(255.0)
        else:
            # Clipping the scaled value to [0, 255] is clipping the value to [zmin, zmax].
            np.subtract(values, self.zmin, out=scaled)
            np.multiply(scaled, self.scale, out=scaled)
            np.clip(scaled, 0.0, 255.0, out=scaled)
        if finite is not None:
            scaled[~finite] = 0.0
        # Half to even, as ndarray.round.
        np.rint(scaled, out=scaled)
        levels = scaled.astype(np.uint8)
        if out is None or out.flags.c_contiguous:
            return np.take(GAMMA_TABLE, levels, out=out)
        # np.take into a strided array (a channel of an RGB buffer) is about twice as slow
        # as into a fresh one and a copy.
        out[...] = np.take(GAMMA_TABLE, levels)
        return out


def _order_statistic(cumulative: np.ndarray, index: int) -> int:
    """The value at `index` of the sorted 8-bit values whose cumulative histogram is given."""
    return int(np.searchsorted(cumulative, index, side="right"))


def median_stretch(histogram: np.ndarray, percentile: float) -> np.ndarray:
    """`recalculate_median` as a 256-entry table, from the histogram of the whole 8-bit frame.

    fits2image subtracts the frame's median, clips at 0, divides by the `percentile` of the
    result, multiplies by 255, clips at 255 and truncates to 8 bits.
    """
    counts = np.asarray(histogram, dtype=np.int64)
    n = int(counts.sum())
    levels = np.arange(256, dtype=np.float64)
    if n == 0:
        return np.zeros(256, dtype=np.uint8)
    cumulative = np.cumsum(counts)
    # np.median: the middle value, or the mean of the two middle values.
    upper = _order_statistic(cumulative, n // 2)
    if n % 2:
        median = float(upper)
    else:
        median = (float(_order_statistic(cumulative, n // 2 - 1)) + upper) / 2.0
    # np.percentile, method "linear", on max(value - median, 0), whose order is the values'.
    virtual = (n - 1) * (np.true_divide(percentile, 100))
    if virtual >= n - 1:
        below = above = n - 1
    elif virtual < 0:
        below = above = 0
    else:
        below = int(np.floor(virtual))
        above = below + 1
    gamma = float(virtual - np.floor(virtual)) if 0 <= virtual < n - 1 else 0.0
    a = max(_order_statistic(cumulative, below) - median, 0.0)
    b = max(_order_statistic(cumulative, above) - median, 0.0)
    difference = b - a
    max_value = b - difference * (1 - gamma) if gamma >= 0.5 else a + difference * gamma
    stretched = np.maximum(levels - median, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        stretched = stretched * 255.0 / max_value
    stretched[stretched > 255.0] = 255.0
    # fits2image casts 0 / 0 to 0 (NaN to uint8 on the platforms it runs on).
    stretched[np.isnan(stretched)] = 0.0
    return stretched.astype(np.uint8)
