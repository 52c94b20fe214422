"""The fast renderer against fits2image on generated frames of every kind the archive holds."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fits2image.orientation import orient_array, orientation_transform
from PIL import Image
from skimage.metrics import structural_similarity

from tests.support import corpus
from tests.support.imaging import measure_shift
from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame
from thumbservice.adapters.rendering import fits2image_renderer
from thumbservice.adapters.rendering.engine import fast
from thumbservice.adapters.rendering.engine import registration as registration_module
from thumbservice.adapters.rendering.engine.framefile import FrameFile
from thumbservice.adapters.rendering.engine.labels import FONT_PATH
from thumbservice.adapters.rendering.engine.registration import Resampler, register
from thumbservice.adapters.rendering.engine.result import RenderResult
from thumbservice.adapters.rendering.engine.zscale import SampleCollector, sample_stride
from thumbservice.domain.errors import UnreadableFrame

FONT = FONT_PATH
FULL = 100_000


def ssim(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(
        structural_similarity(np.asarray(a), np.asarray(b), channel_axis=2, data_range=255)
    )


def both(paths: list[Path], size: int, **options: object) -> tuple[RenderResult, RenderResult]:
    kwargs: dict = {"width": size, "height": size, "font_path": FONT, **options}
    return fast.render(paths, **kwargs), fits2image_renderer.render(paths, **kwargs)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Case]:
    directory = tmp_path_factory.mktemp("corpus")
    return {case.name: case for case in corpus.build_corpus(directory, big=768, small=512)}


CASES = [
    "e91 RICE 768²",
    "e91 RICE 512²",
    "raw e00 uint16",
    "spectrum",
    "quarter turn",
    "Sinistro quadrants",
    "plain int16",
    "plain float32",
    "label",
    "median 99.5",
    "median 90",
    "color",
]


@pytest.mark.parametrize("size", [100, 300, FULL])
@pytest.mark.parametrize("name", CASES)
def test_the_picture_is_fits2images(cases: dict[str, corpus.Case], name: str, size: int) -> None:
    case = cases[name]
    ours, reference = both(case.paths, size, **case.options)

    assert ours.image.mode == reference.image.mode == "RGB"
    assert ours.image.size == reference.image.size
    assert ssim(ours.image, reference.image) > 0.99
    # The float32 arithmetic moves a handful of pixels by a level or two, no more.
    difference = np.abs(np.asarray(ours.image, int) - np.asarray(reference.image, int))
    assert np.count_nonzero(difference) <= difference.size // 1000
    assert ours.aligned == reference.aligned
    assert ours.note == reference.note


def test_a_quarter_turn_swaps_the_sides(cases: dict[str, corpus.Case]) -> None:
    ours, _ = both(cases["quarter turn"].paths, FULL)
    with fits.open(cases["quarter turn"].paths[0]) as hdul:
        height, width = hdul[1].shape
    assert width != height
    assert ours.image.size == (height, width)


def test_a_spectrum_is_flipped_but_not_turned(cases: dict[str, corpus.Case]) -> None:
    path = cases["spectrum"].paths[0]
    ours, _ = both([path], FULL)
    with fits.open(path) as hdul:
        data = np.asarray(hdul[1].data)
    assert ours.image.size == (data.shape[1], data.shape[0])
    # The trace runs at 40% of the height in the file, so at 60% from the top once flipped.
    profile = np.asarray(ours.image.convert("L"), dtype=float).mean(axis=1)
    assert abs(int(np.argmax(profile)) - 0.6 * data.shape[0]) < 0.05 * data.shape[0]


def test_sinistro_renders_its_first_quadrant(cases: dict[str, corpus.Case]) -> None:
    ours, _ = both(cases["Sinistro quadrants"].paths, FULL)
    assert ours.image.size == (256, 256)


def test_the_label_is_white_in_the_lower_left_corner(cases: dict[str, corpus.Case]) -> None:
    ours, _ = both(cases["label"].paths, 300, label="WWWWWW")
    corner = np.asarray(ours.image.crop((0, 270, 120, 300)), dtype=int)
    white = corner[(corner == 255).all(axis=2)]
    assert len(white) > 30


def test_median_stretches_the_picture(cases: dict[str, corpus.Case]) -> None:
    path = cases["median 99.5"].paths
    plain, _ = both(path, 200)
    stretched, _ = both(path, 200, median=True, percentile=90.0)
    assert np.mean(np.asarray(stretched.image)) != pytest.approx(np.mean(np.asarray(plain.image)))


@pytest.mark.parametrize("size", [150, FULL])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_and_inf_pixels_are_drawn_black(tmp_path: Path, size: int) -> None:
    bad, clean = corpus.write_with_bad_pixels(tmp_path, "bad", 384)
    with pytest.raises(UnreadableFrame):  # fits2image cannot render it at all
        fits2image_renderer.render([bad], width=size, height=size, font_path=FONT)

    ours = fast.render([bad], width=size, height=size, font_path=FONT).image
    reference = fits2image_renderer.render([clean], width=size, height=size, font_path=FONT)

    if size == FULL:
        with fits.open(bad) as hdul:
            finite = np.isfinite(hdul[0].data)
            transform = orientation_transform(hdul[0].header)
        black = orient_array(~finite, transform)
        assert np.all(np.asarray(ours)[black] == 0)
        # Away from them the picture is the clean frame's, but for limits taken from the
        # finite samples only.
        near = np.asarray(Image.fromarray(black).filter(_grow()), dtype=bool)
        ours_away = np.asarray(ours, dtype=float)[~near]
        assert np.mean(np.abs(ours_away - np.asarray(reference.image)[~near])) < 1.0
    else:
        assert ssim(ours, reference.image) > 0.9


def _grow():  # type: ignore[no-untyped-def]
    from PIL import ImageFilter

    return ImageFilter.MaxFilter(3)


def test_a_constant_frame_renders_grey(tmp_path: Path) -> None:
    path = corpus.write_constant(tmp_path, "flat", 200)
    image = np.asarray(fast.render([path], width=100, height=100, font_path=FONT).image)
    assert image.shape == (100, 100, 3)
    assert np.unique(image).size == 1
    assert 150 < int(image[0, 0, 0]) < 220


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_plain_integer_and_float_frames(tmp_path: Path, dtype: type[np.generic]) -> None:
    path = corpus.write_plain(tmp_path, "plain", 300, 200, dtype)
    ours, reference = both([path], 120)
    assert ssim(ours.image, reference.image) > 0.99


def test_a_file_without_an_image_is_unreadable(tmp_path: Path) -> None:
    table = corpus.write_table_only(tmp_path, "table")
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"not a FITS file at all" * 200)
    for path in (table, garbage, tmp_path / "missing.fits.fz"):
        with pytest.raises(UnreadableFrame):
            fast.render([path], width=100, height=100, font_path=FONT)


def test_a_large_frame_spills_to_the_work_directory_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = corpus.write_e91(tmp_path, "spill", 512)
    in_memory = fast.render([path], width=200, height=200, font_path=FONT).image
    monkeypatch.setattr(fast, "IN_MEMORY_BYTES", 0)
    workdir = tmp_path / "work"
    workdir.mkdir()
    spilled = fast.render([path], width=200, height=200, font_path=FONT, workdir=workdir).image
    assert np.array_equal(np.asarray(spilled), np.asarray(in_memory))
    assert list(workdir.iterdir()) == []


# Color: the other frames land on the red frame's grid.

SIDE = 512


@pytest.fixture(scope="module")
def color(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return corpus.write_color(tmp_path_factory.mktemp("color"), "field", SIDE)


@pytest.mark.parametrize("size", [SIDE, 256])
def test_color_channels_are_aligned_at_the_output_size(color: list[Path], size: int) -> None:
    result = fast.render(color, width=size, height=size, color=True, font_path=FONT)
    assert result.aligned is True and result.note == ""
    rgb = np.asarray(result.image, dtype=float)
    assert rgb.shape == (size, size, 3)
    for channel in (1, 2):
        assert np.hypot(*measure_shift(rgb[..., 0], rgb[..., channel])) < 0.5

    unaligned = fast.render(color, width=size, height=size, color=True, font_path=FONT, align=False)
    assert unaligned.aligned is None
    rgb = np.asarray(unaligned.image, dtype=float)
    scale = size / SIDE
    # North-up turns FITS dy around; the frames were pointed (12, -7) and (-9, 5) px away.
    assert measure_shift(rgb[..., 0], rgb[..., 1]) == pytest.approx((12 * scale, 7 * scale), abs=1)
    assert measure_shift(rgb[..., 0], rgb[..., 2]) == pytest.approx((-9 * scale, -5 * scale), abs=1)


def test_color_without_a_usable_wcs_falls_back(color: list[Path], tmp_path: Path) -> None:
    no_wcs = write_frame(
        FrameSpec("nowcs", SIDE, SIDE, filter="V", field_seed=7, with_wcs=False), tmp_path
    )
    paths = [color[0], no_wcs, color[2]]
    ours, reference = both(paths, 200, color=True)
    assert ours.aligned is False and ours.note == "no usable WCS in nowcs.fits.fz"
    assert (reference.aligned, reference.note) == (ours.aligned, ours.note)
    assert ssim(ours.image, reference.image) > 0.99


def test_color_frames_that_do_not_overlap_fall_back(color: list[Path], tmp_path: Path) -> None:
    far = write_frame(
        FrameSpec("far", SIDE, SIDE, filter="V", field_seed=7, offset=(5000, 0)), tmp_path
    )
    ours, reference = both([color[0], far, color[2]], 200, color=True)
    assert ours.aligned is False and ours.note.startswith("frames do not overlap")
    assert ours.note == reference.note
    assert ssim(ours.image, reference.image) > 0.99


def test_color_frames_of_different_sizes_are_cropped_as_fits2image_crops(
    color: list[Path], tmp_path: Path
) -> None:
    smaller = write_frame(
        FrameSpec("smaller", 400, 460, filter="V", field_seed=7, noise_seed=2), tmp_path
    )
    paths = [color[0], smaller, color[2]]
    ours, reference = both(paths, FULL, color=True, align=False)
    assert ours.image.size == reference.image.size == (400, 460)
    assert ssim(ours.image, reference.image) > 0.99
    ours, reference = both(paths, 100, color=True)
    assert ours.aligned is True
    assert ssim(ours.image, reference.image) > 0.99


def test_a_distorted_frame_is_aligned_through_a_mesh(
    color: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    red = color[0]
    with fits.open(red) as hdul:
        header = hdul["SCI"].header.copy()
        pixels = np.asarray(hdul["SCI"].data, dtype=np.float32)
    # The same pointing through optics with a quadratic distortion of about 2 px at the edges;
    # the pixels are left as they are, so the mapping, not the stars, is distorted.
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header["A_ORDER"], header["B_ORDER"] = 2, 2
    header["A_2_0"], header["A_1_1"], header["A_0_2"] = 3e-5, 1e-5, 0.0
    header["B_2_0"], header["B_1_1"], header["B_0_2"] = 0.0, -1e-5, 3e-5
    distorted = tmp_path / "distorted.fits"
    fits.PrimaryHDU(pixels, header).writeto(distorted)

    with caplog.at_level(logging.INFO, logger="thumbservice.adapters.rendering"):
        ours, reference = both([red, distorted, color[2]], FULL, color=True)
    assert "mesh" in caplog.text
    assert ours.aligned is True
    assert ssim(ours.image, reference.image) > 0.99


@pytest.mark.parametrize("offset", [(12, -7, 0.4), (-150, 100, -2.0), (0.5, 0.25, 0.0)])
def test_resampled_samples_are_the_resampled_pixels(tmp_path: Path, offset: tuple) -> None:
    """The zscale samples interpolated on their own equal those of the whole resampled frame,
    edges and fill included."""
    dx, dy, angle = offset
    red = write_frame(FrameSpec("red", SIDE, 384, field_seed=7), tmp_path)
    other = write_frame(
        FrameSpec("other", 448, SIDE, field_seed=7, offset=(dx, dy), rotation_deg=angle),
        tmp_path,
    )
    with FrameFile(red) as reference, FrameFile(other) as frame:
        registration = register(reference, [frame])
        assert registration.moves(0)
        pixels = frame.whole()
    resampler = Resampler(registration, 0, 401.5)

    def source(start: int, stop: int) -> np.ndarray:
        return pixels[start:stop]

    width, height = resampler.width, resampler.height
    stride = sample_stride(width, height, 500)
    collector = SampleCollector(width, stride)
    for start in range(0, height, 100):
        collector.add(start, resampler.band(start, min(start + 100, height), source))
    expected = collector.samples()
    samples = resampler.samples(stride, source, 64)
    assert samples.dtype == expected.dtype == np.float32
    assert np.array_equal(samples, expected)
    if dx == -150:  # part of the grid lies off the frame: those samples are the fill
        assert np.count_nonzero(samples == np.float32(401.5)) > 10


def test_bands_resampled_in_place_are_image_transforms(
    color: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow's core writing into a numpy array gives `Image.transform`'s pixels exactly."""
    with FrameFile(color[0]) as reference, FrameFile(color[1]) as frame:
        registration = register(reference, [frame])
        pixels = frame.whole()
    resampler = Resampler(registration, 0, 399.25)

    def source(start: int, stop: int) -> np.ndarray:
        return pixels[start:stop]

    mapped = [resampler.band(start, start + 128, source) for start in range(0, SIDE, 128)]
    assert all(band.flags.writeable for band in mapped)
    monkeypatch.setattr(registration_module, "_MAPPED_TRANSFORM", False)
    public = [resampler.band(start, start + 128, source) for start in range(0, SIDE, 128)]
    assert all(np.array_equal(a, b) for a, b in zip(mapped, public, strict=True))
