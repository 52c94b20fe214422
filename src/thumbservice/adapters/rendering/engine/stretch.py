"""astropy.visualization's stretches, as a map from float32 bands to 8-bit values.

Each stretch is one small class with astropy's formula, in astropy's order of operations
(`LinearStretch`, `SqrtStretch`, `PowerStretch(a)`, `SquaredStretch`, `LogStretch(a)`,
`AsinhStretch(a)`, `SinhStretch(a)`, `HistEqStretch`). An interval (`intervals`) gives the
data values drawn 0 and 1, and the 8-bit value is `floor(255 * stretch(x))` of the clipped
`x = (value - vmin) / (vmax - vmin)`, as `astropy.visualization.make_rgb` makes it.

Evaluating a logarithm or an arcsinh on every pixel would cost several times fits2image's
whole scaling (0.3-0.4 s on a 4096x4096 frame). `LevelMap` instead cuts [0, 1] into 65,535
bins, evaluates the stretch once on each bin's edges, and looks each pixel's bin up, as
`GammaMap` does for fits2image's gamma. A bin whose edges are one level apart holds a level
boundary, and its pixels may come out one level low or high. A bin more than one level wide
has its pixels evaluated exactly when it lies at the steep start of the stretch (`log`, a
small `power`: the pixels are picked by value before scaling), and elsewhere (a large
`power`'s end, and for `histeq` every bin holding a boundary, since its boundaries crowd
where most pixels are) is looked up again in 256 finer bins of its own. So every value is
within one level of astropy's, and most equal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from thumbservice.adapters.rendering.engine import intervals
from thumbservice.domain.display import DisplayOptions, Interval, Stretch

logger = logging.getLogger(__name__)

LEVEL_BINS = 65535
"""Bins of [0, 1] in a level map (the clipped top, x = 1, is one more)."""

SUB_BINS = 256
"""Finer bins of each bin more than a level wide (or, for histeq, holding a boundary)."""

Levels = Callable[[np.ndarray], np.ndarray]
"""The exact 8-bit values of normalised, clipped values (float64, in [0, 1])."""


class LinearStretch:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x


class SqrtStretch:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(x)


@dataclass(frozen=True)
class PowerStretch:
    a: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.power(x, self.a)


class SquaredStretch(PowerStretch):
    def __init__(self) -> None:
        super().__init__(2.0)


@dataclass(frozen=True)
class LogStretch:
    a: float = 1000.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.multiply(x, self.a)
        np.add(y, 1.0, out=y)
        np.log(y, out=y)
        return np.true_divide(y, np.log(self.a + 1.0), out=y)


@dataclass(frozen=True)
class AsinhStretch:
    a: float = 0.1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.true_divide(x, self.a)
        np.arcsinh(y, out=y)
        return np.true_divide(y, np.arcsinh(1.0 / self.a), out=y)


@dataclass(frozen=True)
class SinhStretch:
    a: float = 1.0 / 3.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.true_divide(x, self.a)
        np.sinh(y, out=y)
        return np.true_divide(y, np.sinh(1.0 / self.a), out=y)


StretchFunction = Callable[[np.ndarray], np.ndarray]


def stretch_function(options: DisplayOptions) -> StretchFunction:
    """The stretch of `options` (not histeq, whose levels come from the data's quantiles)."""
    stretch = options.stretch
    if stretch is Stretch.LINEAR:
        return LinearStretch()
    if stretch is Stretch.SQRT:
        return SqrtStretch()
    if stretch is Stretch.SQUARED:
        return SquaredStretch()
    if stretch is Stretch.POWER:
        assert options.power is not None
        return PowerStretch(options.power)
    assert options.a is not None, stretch
    if stretch is Stretch.LOG:
        return LogStretch(options.a)
    if stretch is Stretch.ASINH:
        return AsinhStretch(options.a)
    if stretch is Stretch.SINH:
        return SinhStretch(options.a)
    raise ValueError(f"no stretch function for {stretch}")


def levels_of(stretch: StretchFunction) -> Levels:
    """`floor(255 * stretch(x))`, as make_rgb turns a stretched image into 8 bits."""

    def levels(x: np.ndarray) -> np.ndarray:
        y = stretch(np.asarray(x, dtype=np.float64))
        return np.clip(np.floor(y * 255.0), 0, 255).astype(np.uint8)

    return levels


def histeq_levels(thresholds: np.ndarray) -> Levels:
    """`HistEqStretch`'s 8-bit values from the x at which it reaches each level k / 255.

    astropy interpolates the sorted, normalised data against `linspace(0, 1, n)`, so it
    reaches k / 255 where the data reach their quantile k / 255: the 8-bit value of x is the
    number of those thresholds at or below it.
    """

    def levels(x: np.ndarray) -> np.ndarray:
        return np.searchsorted(thresholds, x, side="right").astype(np.uint8)

    return levels


class LevelMap:
    """Data values to 8-bit values: interval `vmin`..`vmax`, then a stretch's `levels`."""

    def __init__(self, vmin: float, vmax: float, levels: Levels, *, exact: bool = False) -> None:
        """`exact`: look up again every pixel of a bin that holds a level boundary (for
        histeq, whose boundaries crowd where most pixels are), not only of bins wider than a
        level."""
        self.vmin = float(vmin)
        self.vmax = float(vmax)
        self.levels = levels
        span = self.vmax - self.vmin
        # astropy's interval leaves the values unscaled when the limits are equal.
        self.divisor = span if span != 0 else 1.0
        self.zero = np.float32(self.vmin)
        self.scale = np.float32(LEVEL_BINS / self.divisor)
        edges = np.arange(LEVEL_BINS + 1, dtype=np.float64) / LEVEL_BINS
        at_edges = levels(edges).astype(np.int64)
        # Bin i holds x in [i, i + 1) / LEVEL_BINS and takes the level of its centre; bin
        # LEVEL_BINS is x = 1.
        centres = (np.arange(LEVEL_BINS, dtype=np.float64) + 0.5) / LEVEL_BINS
        self.table = np.append(levels(centres), at_edges[-1:]).astype(np.uint8)
        wide = np.flatnonzero(np.diff(at_edges) > (0 if exact else 1))
        # The steep start (a run of wide bins from x = 0): its pixels are picked by value
        # before scaling and evaluated exactly; below this data value.
        start = int(np.argmin(wide == np.arange(wide.size))) if wide.size else 0
        if wide.size and wide[-1] == wide.size - 1:
            start = wide.size
        self._start = start
        self._exact_below = self.vmin + start / LEVEL_BINS * self.divisor
        if start:
            # Bin 0 then serves only values at or below vmin (x clipped to 0), and NaN.
            self.table[0] = levels(np.zeros(1))[0]
        # The other wide bins: their pixels are looked up again in a table of SUB_BINS finer
        # bins of their own (the scaled float32 value has about that resolution).
        later = wide[start:]
        self._later = later.size
        self._slot = np.full(LEVEL_BINS + 1, -1, dtype=np.int32)
        self._slot[later] = np.arange(later.size, dtype=np.int32)
        fine = (later[:, None] + (np.arange(SUB_BINS) + 0.5) / SUB_BINS).reshape(-1)
        self._fine = levels(np.clip(fine / LEVEL_BINS, 0.0, 1.0)).astype(np.uint8)

    def apply(
        self, values: np.ndarray, may_be_nan: bool = True, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The 8-bit values of a float32 chunk (used as scratch space if writable); NaN is 0,
        +inf the top of the range, -inf the bottom, as astropy's clipping leaves them."""
        nan = None
        if may_be_nan:
            with np.errstate(invalid="ignore", over="ignore"):
                total = np.add.reduce(values, axis=None)
            if not np.isfinite(total):
                nan = np.isnan(values)
        exact: tuple[np.ndarray, np.ndarray] | None = None
        finer = self._later > 0
        if self._start:
            # The steep start of the stretch: pick its pixels before they are scaled.
            with np.errstate(invalid="ignore"):
                chosen = (values > self.zero) & (values < self._exact_below)
            if nan is not None:
                chosen &= ~nan
            if chosen.any():
                exact = (chosen, values[chosen])
        scaled = values if values.flags.writeable else np.empty_like(values)
        with np.errstate(invalid="ignore", over="ignore"):
            np.subtract(values, self.zero, out=scaled)
            np.multiply(scaled, self.scale, out=scaled)
        np.clip(scaled, 0.0, float(LEVEL_BINS), out=scaled)
        if nan is not None:
            scaled[nan] = 0.0
        index = scaled.astype(np.uint16)
        direct = out is not None and out.flags.c_contiguous
        result = np.take(self.table, index, out=out if direct else None)
        if finer:
            slot = np.take(self._slot, index)
            chosen = slot >= 0
            if chosen.any():
                within = scaled[chosen] - index[chosen]
                sub = np.clip((within * SUB_BINS).astype(np.int64), 0, SUB_BINS - 1)
                result[chosen] = self._fine[slot[chosen].astype(np.int64) * SUB_BINS + sub]
        if exact is not None:
            chosen, picked = exact
            x = (picked.astype(np.float64) - self.vmin) / self.divisor
            result[chosen] = self.levels(np.clip(x, 0.0, 1.0))
        if out is not None and not direct:
            out[...] = result
            return out
        return result


Source = intervals.Source


def limits(
    options: DisplayOptions, source: Source, total: int
) -> tuple[float, float, intervals.Summary | None]:
    """The interval's vmin and vmax over the values `source` reads (`total` of them)."""
    interval = options.interval
    if interval is Interval.ZSCALE:
        assert options.contrast is not None
        low, high = intervals.zscale_limits(source, total, options.contrast)
        return low, high, None
    summary = intervals.summarise(source)
    if interval is Interval.PERCENTILE:
        assert options.percentile is not None
        lower = (100 - options.percentile) * 0.5
        low, high = intervals.percentiles(source, np.array([lower, 100 - lower]) / 100, summary)
        return float(low), float(high), summary
    if interval is Interval.MANUAL:
        low = summary.minimum if options.min_cut is None else options.min_cut
        high = summary.maximum if options.max_cut is None else options.max_cut
        return low, high, summary
    return summary.minimum, summary.maximum, summary


def level_map(options: DisplayOptions, source: Source, total: int) -> LevelMap:
    """The options' interval and stretch, measured on the values `source` reads."""
    if options.interval is Interval.MANUAL and None not in (options.min_cut, options.max_cut):
        assert options.min_cut is not None and options.max_cut is not None
        vmin, vmax, summary = options.min_cut, options.max_cut, None
    else:
        vmin, vmax, summary = limits(options, source, total)
    logger.debug("Display limits %s..%s for %s", vmin, vmax, options.canonical())
    if options.stretch is not Stretch.HISTEQ:
        return LevelMap(vmin, vmax, levels_of(stretch_function(options)))
    if summary is None:
        summary = intervals.summarise(source)
    quantiles = intervals.percentiles(source, np.arange(1, 256) / 255.0, summary)
    span = summary.maximum - summary.minimum
    # HistEqStretch compares x, normalised by the interval, with the data normalised by
    # their own minimum and maximum: level k begins where x reaches the quantile k / 255.
    thresholds = (quantiles - summary.minimum) / (span if span else 1.0)
    return LevelMap(vmin, vmax, histeq_levels(np.maximum.accumulate(thresholds)), exact=True)


def rows_source(read: Callable[[int, int], np.ndarray], height: int, band_rows: int) -> Source:
    """A Source over `read(start, stop)`, `band_rows` rows at a time."""

    def bands() -> Iterator[np.ndarray]:
        for start in range(0, height, band_rows):
            yield read(start, min(start + band_rows, height))

    return bands


def chained(sources: list[Source]) -> Source:
    """One Source over several, one after another (the channels of a composite together)."""

    def bands() -> Iterator[np.ndarray]:
        for source in sources:
            yield from source()

    return bands


@dataclass(frozen=True)
class DisplayScaling:
    """How a channel's values become 8-bit values under non-default options.

    Each channel measures its own interval (`for_channel`), unless one map was measured over
    the three channels together (`shared`).
    """

    options: DisplayOptions
    shared: LevelMap | None = None

    def for_channel(
        self, read: Callable[[int, int], np.ndarray], height: int, width: int, band_rows: int
    ) -> LevelMap:
        if self.shared is not None:
            return self.shared
        return level_map(self.options, rows_source(read, height, band_rows), height * width)
