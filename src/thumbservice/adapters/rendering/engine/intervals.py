"""astropy.visualization's intervals, computed from a frame read band by band.

astropy's intervals take the whole array: `MinMaxInterval` its finite minimum and maximum,
`ZScaleInterval` IRAF's zscale on `values[::stride][:n_samples]` of the finite values,
`PercentileInterval` `np.percentile` of them. Here the frame comes as bands of rows (a
`Source` reads them again for each pass), and nothing of the size of the frame is held:

* the minimum and maximum are taken as the bands go by;
* zscale's samples are the same pixels astropy takes (the stride counts finite values only,
  so a frame with NaN or infinite pixels is read twice), and the limits are astropy's own
  `ZScaleInterval.get_limits` on them;
* a percentile is an order statistic found by histograms of 65,536 bins, each pass narrowing
  the range, until the bins that hold the wanted ranks are small enough to be collected and
  sorted: the same values `np.percentile` interpolates between, exactly. When the wanted
  ranks crowd into bins too full to sort (histeq's 255 quantiles on a sky of one value or
  so), those bins are cut into 1,024 sub-bins each and a rank is interpolated within its
  sub-bin, about 1/67,000,000 of the range wide.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from astropy.visualization import ZScaleInterval

Source = Callable[[], Iterator[np.ndarray]]
"""Reads the frame again, as float arrays of rows in order (not to be written to)."""

ZSCALE_SAMPLES = 1000
"""`ZScaleInterval`'s default `n_samples`."""

BINS = 1 << 16
"""Bins of one histogram pass."""

COLLECT = 1 << 20
"""Values in the wanted bins collected and sorted at most (4 MiB as float32)."""

MAX_PASSES = 6
"""Histogram passes at most: beyond, a rank's value is read off finer bins (`_refine`)."""

MAX_NARROWED = 4
"""Bins narrowed by passes of their own at most; more are refined together (`_refine`)."""

SUB_BINS = 1024
"""Sub-bins of each bin `_refine` splits."""


@dataclass(frozen=True)
class Summary:
    """The frame's size, its finite values' count and range."""

    total: int
    finite: int
    minimum: float
    maximum: float


def finite_values(chunk: np.ndarray) -> np.ndarray:
    """The finite values of a chunk, flat (the chunk itself when all are finite)."""
    flat = chunk.reshape(-1)
    if flat.dtype.kind != "f":
        return flat
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.add.reduce(flat, axis=None)
    if np.isfinite(total):
        return flat
    return flat[np.isfinite(flat)]


def summarise(source: Source) -> Summary:
    total = finite = 0
    low, high = math.inf, -math.inf
    for chunk in source():
        total += chunk.size
        good = finite_values(chunk)
        if good.size:
            finite += good.size
            low = min(low, float(good.min()))
            high = max(high, float(good.max()))
    if not finite:
        low = high = 0.0
    return Summary(total, finite, low, high)


def minmax_limits(source: Source) -> tuple[float, float]:
    """`MinMaxInterval().get_limits`: the finite values' minimum and maximum."""
    summary = summarise(source)
    return summary.minimum, summary.maximum


def zscale_samples(source: Source, total: int, n_samples: int = ZSCALE_SAMPLES) -> np.ndarray:
    """The samples `ZScaleInterval` takes: `finite[::stride][:n_samples]`.

    The first pass takes them assuming every value is finite (`total` of them) and counts
    the finite ones; only when some are not does a second pass take them again.
    """
    samples, finite = _strided(source, max(1, int(max(1.0, total / n_samples))), n_samples)
    if finite == total:
        return samples
    stride = int(max(1.0, finite / n_samples))
    samples, _ = _strided(source, stride, n_samples, compact=True)
    return samples


def _strided(
    source: Source, stride: int, count: int, *, compact: bool = False
) -> tuple[np.ndarray, int]:
    """Values at flat indices 0, stride, ... (count of them), of the finite values when
    `compact`, of all values otherwise; and how many values were finite."""
    parts: list[np.ndarray] = []
    offset = finite = 0
    last = stride * (count - 1)
    for chunk in source():
        good = finite_values(chunk)
        finite += good.size
        values = good if compact else chunk.reshape(-1)
        start = -(-offset // stride) * stride
        if start <= last:
            stop = min(offset + values.size, last + 1)
            if start < stop:
                parts.append(values[start - offset : stop - offset : stride].copy())
        offset += values.size
    if not parts:
        return np.empty(0, np.float32), finite
    return np.concatenate(parts), finite


def zscale_limits(source: Source, total: int, contrast: float) -> tuple[float, float]:
    """`ZScaleInterval(contrast=contrast).get_limits` of the frame."""
    samples = zscale_samples(source, total)
    if samples.size == 0:
        return 0.0, 0.0
    # Given exactly its samples (at most n_samples of them), astropy takes them all again.
    vmin, vmax = ZScaleInterval(contrast=contrast).get_limits(samples)
    return float(vmin), float(vmax)


def percentiles(source: Source, fractions: np.ndarray, summary: Summary) -> np.ndarray:
    """`np.percentile(finite, 100 * fractions)` (its default linear method) of the frame."""
    n = summary.finite
    if n == 0:
        return np.zeros(len(fractions))
    positions = (n - 1) * np.asarray(fractions, dtype=np.float64)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    ranks = np.unique(np.concatenate([below, above]))
    values = dict(zip(ranks.tolist(), order_statistics(source, ranks, summary), strict=True))
    low = np.array([values[r] for r in below.tolist()])
    high = np.array([values[r] for r in above.tolist()])
    t = positions - below
    # numpy's _lerp: exact at both ends.
    return np.where(t >= 0.5, high - (high - low) * (1 - t), low + (high - low) * t)


def percentile_limits(source: Source, percentile: float) -> tuple[float, float]:
    """`PercentileInterval(percentile).get_limits` of the frame."""
    lower = (100 - percentile) * 0.5
    upper = 100 - lower
    summary = summarise(source)
    low, high = percentiles(source, np.array([lower, upper]) / 100, summary)
    return float(low), float(high)


@dataclass(frozen=True)
class _Job:
    """A value range [low, high], how many finite values lie below it, the ranks in it."""

    low: float
    high: float
    base: int
    ranks: tuple[int, ...]
    count: int = 0
    parent: tuple[float, float, int] | None = None
    """The range and bin of the pass that made this job, to pick its values out again."""


def order_statistics(source: Source, ranks: np.ndarray, summary: Summary) -> list[float]:
    """The values at `ranks` (0-based, sorted, unique) of the sorted finite values."""
    result: dict[int, float] = {}
    jobs = [_Job(summary.minimum, summary.maximum, 0, tuple(int(r) for r in ranks))]
    for passes in range(MAX_PASSES):
        if not jobs:
            break
        jobs = _narrow(source, jobs, result, last=passes == MAX_PASSES - 1)
    return [result[int(r)] for r in ranks]


def _narrow(
    source: Source, jobs: list[_Job], result: dict[int, float], *, last: bool
) -> list[_Job]:
    """A histogram of each job's range; the bins holding its ranks are collected when small
    enough (one more pass), narrowed further otherwise."""
    histograms = [np.zeros(BINS, np.int64) for _ in jobs]
    for chunk in source():
        good = finite_values(chunk)
        for job, counts in zip(jobs, histograms, strict=True):
            _, index = _binned(good, job.low, job.high)
            if index.size:
                counts += np.bincount(index, minlength=BINS)
    collect: list[_Job] = []
    narrower: list[_Job] = []
    for job, counts in zip(jobs, histograms, strict=True):
        if job.high <= job.low:
            result.update(dict.fromkeys(job.ranks, job.low))
            continue
        cumulative = np.cumsum(counts)
        width = (job.high - job.low) / BINS
        by_bin: dict[int, list[int]] = {}
        for rank in job.ranks:
            b = min(int(np.searchsorted(cumulative, rank - job.base, side="right")), BINS - 1)
            by_bin.setdefault(b, []).append(rank)
        for b, in_bin in by_bin.items():
            edge = job.low + b * width
            top = job.high if b == BINS - 1 else job.low + (b + 1) * width
            start = job.base + (int(cumulative[b - 1]) if b else 0)
            part = _Job(edge, top, start, tuple(in_bin), int(counts[b]), (job.low, job.high, b))
            if part.count <= COLLECT:
                collect.append(part)
            elif top <= edge:
                result.update(dict.fromkeys(part.ranks, edge))  # float resolution reached
            else:
                narrower.append(part)
    if sum(part.count for part in collect) > COLLECT:
        # Too many values to sort (the crowded ranks of histeq): finer bins instead.
        _refine(source, collect, result)
    else:
        _collect(source, collect, result)
    if last or len(narrower) > MAX_NARROWED:
        _refine(source, narrower, result)
        return []
    return narrower


def _binned(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """The values in [low, high] and the bin of each, in float64 arithmetic."""
    inside = values
    if values.size and not (values.min() >= low and values.max() <= high):
        inside = values[(values >= low) & (values <= high)]
    if inside.size == 0 or high <= low:
        return inside, np.zeros(inside.size, np.int64)
    scaled = (inside.astype(np.float64) - low) * (BINS / (high - low))
    return inside, np.minimum(scaled.astype(np.int64), BINS - 1)


def _collect(source: Source, jobs: list[_Job], result: dict[int, float]) -> None:
    """Collect the values of each job's bin, sort them and read its ranks off.

    Jobs made by the same pass share its range: each value's bin is found once, and a table
    from bin to job picks out the values wanted.
    """
    parents: dict[tuple[float, float], np.ndarray] = {}
    for slot, job in enumerate(jobs):
        assert job.parent is not None
        low, high, b = job.parent
        parents.setdefault((low, high), np.full(BINS, -1, np.int64))[b] = slot
    slots: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for chunk in source():
        good = finite_values(chunk)
        for (low, high), table in parents.items():
            inside, index = _binned(good, low, high)
            if inside.size:
                slot = table[index]
                keep = slot >= 0
                slots.append(slot[keep])
                values.append(inside[keep])
    every_slot = np.concatenate(slots) if slots else np.empty(0, np.int64)
    every_value = np.concatenate(values).astype(np.float64) if values else np.empty(0)
    order = np.lexsort((every_value, every_slot))
    every_slot, every_value = every_slot[order], every_value[order]
    starts = np.searchsorted(every_slot, np.arange(len(jobs) + 1))
    for slot, job in enumerate(jobs):
        mine = every_value[starts[slot] : starts[slot + 1]]
        for rank in job.ranks:
            if mine.size:
                result[rank] = float(mine[min(max(rank - job.base, 0), mine.size - 1)])
            else:
                result[rank] = job.low


def _refine(source: Source, jobs: list[_Job], result: dict[int, float]) -> None:
    """Each job's bin cut into `SUB_BINS`, all in one pass; a rank is interpolated within
    its sub-bin as if its values were spread evenly."""
    if not jobs:
        return
    parents: dict[tuple[float, float], np.ndarray] = {}
    for slot, job in enumerate(jobs):
        assert job.parent is not None
        low, high, b = job.parent
        parents.setdefault((low, high), np.full(BINS, -1, np.int64))[b] = slot
    edges = np.array([job.low for job in jobs])
    widths = np.array([job.high - job.low for job in jobs])
    scales = np.divide(SUB_BINS, widths, out=np.zeros_like(widths), where=widths > 0)
    counts = np.zeros(len(jobs) * SUB_BINS, np.int64)
    for chunk in source():
        good = finite_values(chunk)
        for (low, high), table in parents.items():
            inside, index = _binned(good, low, high)
            if not inside.size:
                continue
            slot = table[index]
            keep = slot >= 0
            slot = slot[keep]
            sub = (inside[keep].astype(np.float64) - edges[slot]) * scales[slot]
            sub = np.clip(sub, 0, SUB_BINS - 1).astype(np.int64)
            counts += np.bincount(slot * SUB_BINS + sub, minlength=counts.size)
    for slot, job in enumerate(jobs):
        mine = counts[slot * SUB_BINS : (slot + 1) * SUB_BINS]
        cumulative = np.cumsum(mine)
        for rank in job.ranks:
            offset = rank - job.base
            b = min(int(np.searchsorted(cumulative, offset, side="right")), SUB_BINS - 1)
            within = offset - (int(cumulative[b - 1]) if b else 0)
            share = (within + 0.5) / mine[b] if mine[b] else 0.0
            result[rank] = float(job.low + (b + min(share, 1.0)) * widths[slot] / SUB_BINS)
