"""The fast renderer's pieces against fits2image's and Pillow's own functions, on small arrays."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from astropy.io import fits
from fits2image.orientation import orient_array
from fits2image.scaling import (
    calc_zscale_min_max,
    extract_samples,
    linear_scale,
    recalculate_median,
)
from PIL import Image

from thumbservice.adapters.rendering.engine import fast
from thumbservice.adapters.rendering.engine.blocks import (
    AxisGrid,
    AxisMap,
    BlockSums,
    block_grids,
    finish,
    reduce_factors,
    thumbnail_size,
)
from thumbservice.adapters.rendering.engine.zscale import (
    GammaMap,
    SampleCollector,
    median_stretch,
    sample_stride,
    zscale_limits,
)

TRANSFORMS = [None, *itertools.product((False, True), range(4))]


def sky(shape: tuple[int, int], seed: int = 0, dtype: type[np.generic] = np.float32) -> np.ndarray:
    """Noise on a sky of 400 with a few bright stars, as the frames fits2image renders."""
    rng = np.random.default_rng(seed)
    data = rng.normal(400.0, 12.0, shape)
    rows, cols = rng.integers(0, shape[0], 30), rng.integers(0, shape[1], 30)
    data[rows, cols] += rng.uniform(500, 30000, 30)
    return data.astype(dtype)


def header_for(data: np.ndarray) -> fits.Header:
    header = fits.Header()
    header["NAXIS1"], header["NAXIS2"] = data.shape[1], data.shape[0]
    return header


def collect(data: np.ndarray, band: int) -> np.ndarray:
    collector = SampleCollector(data.shape[1], sample_stride(data.shape[1], data.shape[0]))
    for start in range(0, data.shape[0], band):
        collector.add(start, data[start : start + band])
    return collector.samples()


def scale_in_bands(data: np.ndarray, band: int) -> np.ndarray:
    gamma = GammaMap(*zscale_limits(collect(data, band)))
    return np.vstack(
        [
            gamma.apply(data[start : start + band].astype(np.float32))
            for start in range(0, data.shape[0], band)
        ]
    )


@pytest.mark.parametrize("shape", [(300, 257), (64, 4096), (1000, 31), (45, 45)])
@pytest.mark.parametrize("band", [1, 7, 64, 1000])
def test_samples_are_the_ones_extract_samples_takes(shape: tuple[int, int], band: int) -> None:
    data = sky(shape)
    expected = extract_samples(data, header_for(data))
    samples = collect(data, band)
    assert samples.dtype == expected.dtype
    np.testing.assert_array_equal(samples, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16, np.int32, ">f4"])
def test_limits_are_auto_scale_datas(dtype: type[np.generic]) -> None:
    data = sky((400, 333), seed=1).astype(dtype)
    samples = extract_samples(data, header_for(data))
    _, zmax, _ = calc_zscale_min_max(samples, contrast=0.1, iterations=1)
    assert zscale_limits(collect(data, 50)) == (float(np.median(samples)), float(zmax))


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16, ">f4"])
@pytest.mark.parametrize("seed", range(3))
def test_banded_float32_scaling_matches_linear_scale(dtype: type[np.generic], seed: int) -> None:
    data = sky((512, 480), seed=seed).astype(dtype)
    samples = extract_samples(data, header_for(data))
    _, zmax, _ = calc_zscale_min_max(samples, contrast=0.1, iterations=1)
    expected = linear_scale(data, np.median(samples), zmax)

    scaled = scale_in_bands(data, 37)

    # float32 against float64 arithmetic: a value within about 1e-5 of half a level can round
    # to the other side, a few pixels in 100,000; never by more than one gamma step.
    differ = scaled != expected
    assert np.count_nonzero(differ) <= max(1, expected.size // 10_000)
    levels = np.searchsorted(np.unique(expected), scaled[differ])
    assert np.all(np.abs(levels - np.searchsorted(np.unique(expected), expected[differ])) <= 1)


@pytest.mark.parametrize(("zmin", "zmax"), [(400.0, 400.0), (500.0, 300.0), (0.0, 1.0)])
def test_degenerate_limits_scale_as_linear_scale_does(zmin: float, zmax: float) -> None:
    data = sky((64, 64), seed=2)
    expected = linear_scale(data, zmin, zmax)
    np.testing.assert_array_equal(GammaMap(zmin, zmax).apply(data.astype(np.float32)), expected)


def test_non_finite_pixels_are_left_out_of_the_samples_and_drawn_black() -> None:
    data = sky((200, 200), seed=3)
    bad = data.copy()
    bad[::7, ::5] = np.nan
    bad[3, :] = np.inf
    bad[5, :] = -np.inf
    samples = collect(bad, 16)
    finite = samples[np.isfinite(samples)]
    assert finite.size < samples.size
    zmin, zmax = zscale_limits(samples)
    assert zmin == float(np.median(finite))
    assert zmax == float(calc_zscale_min_max(finite, contrast=0.1, iterations=1)[1])

    scaled = GammaMap(zmin, zmax).apply(bad.copy())
    assert np.all(scaled[~np.isfinite(bad)] == 0)
    expected = linear_scale(np.where(np.isfinite(bad), bad, zmin), zmin, zmax)
    good = np.isfinite(bad)
    assert np.count_nonzero(scaled[good] != expected[good]) <= 1


def test_a_frame_with_no_finite_sample_scales_to_black() -> None:
    data = np.full((64, 64), np.nan, dtype=np.float32)
    scaled = GammaMap(*zscale_limits(collect(data, 8))).apply(data)
    assert np.all(scaled == 0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("percentile", [99.5, 90.0, 50.0, 0.0, 100.0, 37.3])
@pytest.mark.parametrize("shape", [(101, 99), (64, 64), (1, 7)])
def test_median_stretch_is_recalculate_median(percentile: float, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(int(percentile * 10) + shape[0])
    image = np.minimum(rng.gamma(2.0, 20.0, shape), 255).astype(np.uint8)
    histogram = np.bincount(image.ravel(), minlength=256)
    stretch = median_stretch(histogram, percentile)
    np.testing.assert_array_equal(stretch[image], recalculate_median(image, percentile))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_median_stretch_of_a_flat_image_is_recalculate_median() -> None:
    image = np.full((32, 32), 90, dtype=np.uint8)
    image[0, 0] = 200
    histogram = np.bincount(image.ravel(), minlength=256)
    with np.errstate(all="ignore"):
        expected = recalculate_median(image, 99.5)
    np.testing.assert_array_equal(median_stretch(histogram, 99.5)[image], expected)


def reduced_by_blocks(
    data: np.ndarray, transform: object, factors: tuple[int, int], band: int = 5
) -> np.ndarray:
    axes = AxisMap.of(transform)  # type: ignore[arg-type]
    rows, cols = block_grids(*data.shape, axes, factors)
    sums = BlockSums(rows, cols)
    for first, _, start, stop in rows.bands(band):
        sums.add(first, data[start:stop])
    return orient_array(sums.rounded(), transform, flip_v=True)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("factors", [(2, 2), (3, 3), (4, 4), (5, 5), (3, 7), (10, 1), (1, 6)])
def test_block_reduction_is_pillows_reduce(transform: object, factors: tuple[int, int]) -> None:
    rng = np.random.default_rng(factors[0] * 10 + factors[1])
    data = rng.integers(0, 256, (53, 47), dtype=np.uint8)
    data[:5] = 255  # full blocks of 255 test the rounding at the top of the range
    oriented = orient_array(data, transform, flip_v=True)
    expected = np.asarray(Image.fromarray(oriented).reduce(factors))
    np.testing.assert_array_equal(reduced_by_blocks(data, transform, factors), expected)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("wanted", [(10, 10), (20, 7), (23, 23), (60, 60), (47, 53)])
def test_reduce_and_finish_is_pillows_thumbnail(transform: object, wanted: tuple[int, int]) -> None:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, (97, 61), dtype=np.uint8)
    expected = Image.fromarray(orient_array(data, transform, flip_v=True))
    size = expected.size
    expected.thumbnail(wanted, Image.Resampling.LANCZOS)

    final = thumbnail_size(size, wanted)
    factors = reduce_factors(size, final) if final else (1, 1)
    reduced = Image.fromarray(reduced_by_blocks(data, transform, factors))
    result = finish(reduced, size, factors, final)

    assert result.size == expected.size
    np.testing.assert_array_equal(np.asarray(result), np.asarray(expected))


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_region_reduces_as_pillow_reduces_the_crop(transform: object) -> None:
    rng = np.random.default_rng(8)
    data = rng.integers(0, 256, (60, 41), dtype=np.uint8)
    oriented = orient_array(data, transform, flip_v=True)
    top, left = 5, 3
    height, width = oriented.shape[0] - 9, oriented.shape[1] - 7
    crop = Image.fromarray(oriented).crop((left, top, left + width, top + height))
    expected = np.asarray(crop.reduce((3, 4)))

    axes = AxisMap.of(transform)  # type: ignore[arg-type]
    rows, cols = block_grids(*data.shape, axes, (3, 4), (top, left, height, width))
    sums = BlockSums(rows, cols)
    for first, _, start, stop in rows.bands(8):
        sums.add(first, data[start:stop])
    reduced = orient_array(sums.rounded(), transform, flip_v=True)
    np.testing.assert_array_equal(reduced, expected)


def test_thumbnail_size_is_pillows() -> None:
    for width, height in [(4096, 4096), (4096, 2048), (517, 1001), (3, 900), (2048, 512)]:
        for wanted in [(200, 200), (100, 37), (1000, 1000), (5000, 100), (1, 1), (4096, 4096)]:
            image = Image.new("L", (width, height))
            image.thumbnail(wanted)
            final = thumbnail_size((width, height), wanted)
            assert (final or (width, height)) == image.size, (width, height, wanted)


def test_grid_anchored_at_the_end_puts_the_partial_block_first() -> None:
    grid = AxisGrid.anchored(0, 10, 4, from_end=True)
    assert grid.edges == (0, 2, 6, 10)
    assert grid.centre_origin() == pytest.approx(2 - 4 + 1.5)
    assert AxisGrid.anchored(0, 10, 4, from_end=False).edges == (0, 4, 8, 10)


def test_limits_a_rounding_error_apart_are_widened_like_equal_ones() -> None:
    # A constant frame: fits2image's line fit leaves zmax 1e-13 below zmin, and its scale then
    # indexes past the end of the gamma table. Taken as equal, the frame comes out mid-grey.
    flat = np.full((16, 16), 400.0, dtype=np.float32)
    zmin, zmax = zscale_limits(collect(flat, 4))
    expected = linear_scale(flat, 400.0, 400.0)
    np.testing.assert_array_equal(GammaMap(zmin, zmax).apply(flat.copy()), expected)
    np.testing.assert_array_equal(GammaMap(400.0, 400.0 - 1e-11).apply(flat.copy()), expected)
    assert 150 < expected[0, 0] < 220


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_an_unoriented_view_writes_where_orientation_puts_the_values(transform: object) -> None:
    axes = AxisMap.of(transform)  # type: ignore[arg-type]
    frame = sky((37, 53))
    oriented = np.zeros_like(orient_array(frame, transform, flip_v=True))
    view = axes.unoriented_view(oriented)
    assert view.shape == frame.shape and np.shares_memory(view, oriented)
    view[...] = frame
    assert np.array_equal(oriented, orient_array(frame, transform, flip_v=True))


def test_a_mapped_rgb_buffer_is_the_merged_planes() -> None:
    planes = [
        np.random.default_rng(seed).integers(0, 256, (61, 83), np.uint8) for seed in (1, 2, 3)
    ]
    stacked = np.zeros((61, 83, 4), np.uint8)
    for channel, plane in enumerate(planes):
        stacked[..., channel] = plane
    mapped = fast._composite(planes, stacked)
    merged = fast._composite(planes, None)
    assert mapped.mode == merged.mode == "RGB"
    assert np.array_equal(np.asarray(mapped), np.asarray(merged))
    size, box = (30, 20), (0.0, 0.0, 83.0, 61.0)
    assert np.array_equal(
        np.asarray(mapped.resize(size, Image.Resampling.LANCZOS, box=box)),
        np.asarray(merged.resize(size, Image.Resampling.LANCZOS, box=box)),
    )
