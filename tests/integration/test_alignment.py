"""Color frames pointed a few pixels apart are put on the reference's grid before stacking."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from fits2image.conversions import fits_to_jpg
from PIL import Image

from tests.support.imaging import fits_pixels, measure_shift
from thumbservice.adapters.archive.dev.frames import FrameSpec, render_pixels, write_frame
from thumbservice.adapters.rendering.engine.alignment import AlignmentReport, align_to_reference

SIZE = 512
RED = FrameSpec("red", SIZE, SIZE, filter="rp", noise_seed=1)
VISUAL = FrameSpec(
    "visual", SIZE, SIZE, filter="V", noise_seed=2, offset=(12, -7), rotation_deg=0.4
)
BLUE = FrameSpec("blue", SIZE, SIZE, filter="B", noise_seed=3, offset=(-9, 5), rotation_deg=-0.3)


def magnitude(shift: tuple[float, float]) -> float:
    return float(np.hypot(*shift))


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    directory = tmp_path_factory.mktemp("frames")
    return write_frame(RED, directory), write_frame(VISUAL, directory), write_frame(BLUE, directory)


def test_other_frames_are_resampled_onto_the_reference(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, visual, blue = frames

    paths, report = align_to_reference(red, [visual, blue], tmp_path / "work")

    assert report.aligned, report.reason
    assert report.reason == ""
    assert paths == [
        red,
        tmp_path / "work" / "aligned-1.fits",
        tmp_path / "work" / "aligned-2.fits",
    ]
    # The visual frame's stars sit (12, -7) px further along its axes, so its centre shows the
    # reference's sky (-12, 7) px from the reference's centre.
    assert report.shifts[0] == pytest.approx((-12.0, 7.0), abs=0.2)
    assert report.shifts[1] == pytest.approx((9.0, -5.0), abs=0.2)

    reference = fits_pixels(red)
    unaligned_visual = measure_shift(reference, fits_pixels(visual))
    unaligned_blue = measure_shift(reference, fits_pixels(blue))
    assert unaligned_visual == pytest.approx((12.0, -7.0), abs=1.5)
    assert unaligned_blue == pytest.approx((-9.0, 5.0), abs=1.5)

    assert magnitude(measure_shift(reference, fits_pixels(paths[1]))) < 0.2
    assert magnitude(measure_shift(reference, fits_pixels(paths[2]))) < 0.2


def test_stars_land_where_the_reference_wcs_puts_them(tmp_path: Path) -> None:
    # Fractional offsets, so a half-pixel slip in the resampling would show.
    reference_spec = FrameSpec("ref", SIZE, SIZE, noise_seed=1, stars=1000)
    other_spec = FrameSpec(
        "other", SIZE, SIZE, noise_seed=2, stars=1000, offset=(7.3, -4.6), rotation_deg=0.7
    )
    reference = write_frame(reference_spec, tmp_path)
    other = write_frame(other_spec, tmp_path)

    paths, report = align_to_reference(reference, [other], tmp_path / "work")

    assert report.aligned, report.reason
    aligned = fits_pixels(paths[1])
    background = float(np.median(aligned))
    truth = render_pixels(reference_spec)[1]
    half = 7
    errors = []
    for x, y in truth:
        neighbours = np.hypot(truth[:, 0] - x, truth[:, 1] - y)
        if np.sum(neighbours < 2 * half) > 1:
            continue
        col, row = round(x), round(y)
        if not (3 * half <= col < SIZE - 3 * half and 3 * half <= row < SIZE - 3 * half):
            continue
        window = aligned[row - half : row + half + 1, col - half : col + half + 1] - background
        if window[half, half] < 1000:  # fainter stars measure to no better than 0.1 px
            continue
        rows, cols = np.mgrid[row - half : row + half + 1, col - half : col + half + 1]
        total = window.sum()
        errors.append(((window * cols).sum() / total - x, (window * rows).sum() / total - y))
    errors_px = np.array(errors)

    assert len(errors_px) >= 8
    assert np.all(np.hypot(*errors_px.T) < 0.1)
    assert magnitude(tuple(np.mean(errors_px, axis=0))) < 0.03


def test_color_composite_of_aligned_frames_has_no_fringes(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, visual, blue = frames
    paths, report = align_to_reference(red, [visual, blue], tmp_path / "work")
    assert report.aligned, report.reason

    aligned_jpg = tmp_path / "aligned.jpg"
    unaligned_jpg = tmp_path / "unaligned.jpg"
    options = {"width": SIZE, "height": SIZE, "color": True, "quality": 95}
    assert fits_to_jpg([str(path) for path in paths], str(aligned_jpg), **options)
    assert fits_to_jpg([str(red), str(visual), str(blue)], str(unaligned_jpg), **options)

    aligned = np.asarray(Image.open(aligned_jpg).convert("RGB"), dtype=np.float64)
    unaligned = np.asarray(Image.open(unaligned_jpg).convert("RGB"), dtype=np.float64)
    assert aligned.shape == unaligned.shape == (SIZE, SIZE, 3)

    # The JPEG's 4:2:0 chroma subsampling mixes every frame into every channel at zero lag,
    # which pulls small shifts towards zero: this catches misregistration by pixels, the
    # sub-pixel accuracy is measured on the FITS data above.
    assert magnitude(measure_shift(aligned[..., 0], aligned[..., 1])) < 0.5
    assert magnitude(measure_shift(aligned[..., 0], aligned[..., 2])) < 0.5
    # fits2image turns these frames north-up, a vertical flip, so FITS dy changes sign.
    assert measure_shift(unaligned[..., 0], unaligned[..., 1]) == pytest.approx((12, 7), abs=1.5)
    assert measure_shift(unaligned[..., 0], unaligned[..., 2]) == pytest.approx((-9, -5), abs=1.5)


def test_aligned_frame_is_float32_on_the_reference_grid_and_wcs(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, visual, _ = frames
    paths, _ = align_to_reference(red, [visual], tmp_path)

    with fits.open(paths[1]) as hdul:
        assert len(hdul) == 1
        data = hdul[0].data
        header = hdul[0].header
        assert data.dtype == np.dtype(">f4")
        assert data.shape == (SIZE, SIZE)
    reference_header = fits.getheader(red, "SCI")
    for key in ("CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD1_2"):
        assert header[key] == reference_header[key]
    assert header["OBSTYPE"] == reference_header["OBSTYPE"]
    assert header["FILTER"] == "V"
    # Outside the visual frame's footprint the fill is its median, not zero.
    assert np.median(data[:, -3:]) == pytest.approx(400.0, abs=5.0)


def test_frame_without_wcs_falls_back_to_the_originals(
    frames: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    red, _, blue = frames
    no_wcs = write_frame(
        FrameSpec("visual-nowcs", SIZE, SIZE, filter="V", noise_seed=2, with_wcs=False), tmp_path
    )

    with caplog.at_level(
        logging.WARNING, logger="thumbservice.adapters.rendering.engine.alignment"
    ):
        paths, report = align_to_reference(red, [no_wcs, blue], tmp_path / "work")

    assert paths == [red, no_wcs, blue]
    assert report == AlignmentReport(
        aligned=False, reason="no usable WCS in visual-nowcs.fits.fz", shifts=()
    )
    assert "no usable WCS in visual-nowcs.fits.fz" in caplog.text
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())
    assert fits_to_jpg([str(path) for path in paths], str(tmp_path / "out.jpg"), color=True)


def test_reference_without_wcs_falls_back(frames: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, visual, blue = frames
    no_wcs = write_frame(FrameSpec("red-nowcs", SIZE, SIZE, with_wcs=False), tmp_path)

    paths, report = align_to_reference(no_wcs, [visual, blue], tmp_path / "work")

    assert paths == [no_wcs, visual, blue]
    assert not report.aligned
    assert "WCS" in report.reason
    assert fits_to_jpg([str(path) for path in paths], str(tmp_path / "out.jpg"), color=True)


def test_unreadable_frame_falls_back_without_raising(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, visual, _ = frames
    missing = tmp_path / "missing.fits.fz"
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"not a FITS file at all" * 200)

    for broken in (missing, garbage):
        paths, report = align_to_reference(red, [visual, broken], tmp_path / "work")
        assert paths == [red, visual, broken]
        assert not report.aligned
        assert report.reason.startswith("alignment failed")


def test_frames_that_do_not_overlap_fall_back(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, _, blue = frames
    far = write_frame(
        FrameSpec("visual-far", SIZE, SIZE, filter="V", noise_seed=2, offset=(5000, 0)), tmp_path
    )

    paths, report = align_to_reference(red, [far, blue], tmp_path / "work")

    assert paths == [red, far, blue]
    assert not report.aligned
    assert report.reason == "frames do not overlap: visual-far.fits.fz covers 0% of red.fits.fz"
    assert report.shifts[0] == pytest.approx((-5000.0, 0.0), abs=1.0)


def test_partly_overlapping_frame_is_aligned(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, _, _ = frames
    # Its stars sit 200 px further right, so it sees columns 0 to 311 of the reference.
    part = write_frame(
        FrameSpec("visual-part", SIZE, SIZE, noise_seed=2, offset=(200, 0)), tmp_path
    )

    paths, report = align_to_reference(red, [part], tmp_path / "work")

    assert report.aligned, report.reason
    assert report.shifts[0] == pytest.approx((-200.0, 0.0), abs=0.01)
    reference = fits_pixels(red)
    aligned = fits_pixels(paths[1])
    assert magnitude(measure_shift(reference[:, 16:296], aligned[:, 16:296])) < 0.2
    assert np.all(aligned[:, 313:] == aligned[0, -1])


def test_plain_fits_reference(frames: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, visual, blue = frames
    plain = write_frame(
        FrameSpec("red-plain", SIZE, SIZE, noise_seed=1, compressed=False), tmp_path
    )

    paths, report = align_to_reference(plain, [visual, blue], tmp_path / "work")

    assert report.aligned, report.reason
    assert paths[0] == plain
    reference = fits_pixels(plain)
    assert magnitude(measure_shift(reference, fits_pixels(paths[1]))) < 0.2
    assert magnitude(measure_shift(reference, fits_pixels(paths[2]))) < 0.2
    assert fits_to_jpg([str(path) for path in paths], str(tmp_path / "out.jpg"), color=True)


def test_plain_fits_other_frames(frames: tuple[Path, Path, Path], tmp_path: Path) -> None:
    red, _, _ = frames
    plain_visual = write_frame(
        FrameSpec("visual-plain", SIZE, SIZE, filter="V", noise_seed=2, offset=(12, -7),
                  compressed=False),
        tmp_path,
    )  # fmt: skip

    paths, report = align_to_reference(red, [plain_visual], tmp_path / "work")

    assert report.aligned, report.reason
    assert magnitude(measure_shift(fits_pixels(red), fits_pixels(paths[1]))) < 0.2


def test_frames_of_another_shape_are_resampled_to_the_reference_shape(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, visual, _ = frames
    # A 400x460 cut of the visual frame, with the WCS moved along: its pixel (0, 0) shows the
    # reference's pixel (28, 27), within the 0.4 degree rotation.
    with fits.open(visual) as hdul:
        header = hdul["SCI"].header.copy()
        pixels = np.array(hdul["SCI"].data[20:480, 40:440], dtype=np.float32)
    header["CRPIX1"] -= 40
    header["CRPIX2"] -= 20
    cut = tmp_path / "visual-cut.fits"
    fits.PrimaryHDU(pixels, header).writeto(cut)

    paths, report = align_to_reference(red, [cut], tmp_path / "work")

    assert report.aligned, report.reason
    assert report.shifts[0] == pytest.approx((-28.0, 1.0), abs=0.5)
    aligned = fits_pixels(paths[1])
    assert aligned.shape == (SIZE, SIZE)
    reference = fits_pixels(red)
    inside = (slice(40, 470), slice(40, 420))
    assert magnitude(measure_shift(reference[inside], aligned[inside])) < 0.2
    assert np.all(aligned[:, 440:] == aligned[0, -1])


def test_frame_on_the_reference_grid_is_used_as_it_is(
    frames: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    red, _, _ = frames
    same = write_frame(FrameSpec("visual-same", SIZE, SIZE, filter="V", noise_seed=2), tmp_path)

    paths, report = align_to_reference(red, [same], tmp_path / "work")

    assert report.aligned, report.reason
    assert paths == [red, same]
    assert report.shifts == (pytest.approx((0.0, 0.0), abs=1e-6),)


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray, fill: float) -> np.ndarray:
    """`image` at (x, y), pixel centres at integers, `fill` outside."""
    height, width = image.shape
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    x0 = np.clip(np.floor(x).astype(int), 0, width - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, height - 2)
    fx = np.clip(x - x0, 0.0, 1.0)
    fy = np.clip(y - y0, 0.0, 1.0)
    value = (
        image[y0, x0] * (1 - fx) * (1 - fy)
        + image[y0, x0 + 1] * fx * (1 - fy)
        + image[y0 + 1, x0] * (1 - fx) * fy
        + image[y0 + 1, x0 + 1] * fx * fy
    )
    return np.where(inside, value, fill)


def test_distorted_frame_is_resampled_through_a_mesh(
    frames: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    red, _, _ = frames
    reference = fits_pixels(red)
    reference_header = fits.getheader(red, "SCI")
    reference_wcs = WCS(reference_header)
    # The same pointing seen through optics with a quadratic distortion of 2 px at the edges.
    header = reference_header.copy()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header["A_ORDER"], header["B_ORDER"] = 2, 2
    header["A_2_0"], header["A_1_1"], header["A_0_2"] = 3e-5, 1e-5, 0.0
    header["B_2_0"], header["B_1_1"], header["B_0_2"] = 0.0, -1e-5, 3e-5
    distorted_wcs = WCS(header)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    world = distorted_wcs.all_pix2world(np.column_stack([cols.ravel(), rows.ravel()]), 0)
    source = reference_wcs.all_world2pix(world, 0)
    pixels = bilinear(reference, source[:, 0], source[:, 1], float(np.median(reference)))
    distorted = tmp_path / "distorted.fits"
    fits.PrimaryHDU(pixels.reshape(SIZE, SIZE).astype(np.float32), header).writeto(distorted)

    with caplog.at_level(logging.INFO, logger="thumbservice.adapters.rendering.engine.alignment"):
        paths, report = align_to_reference(red, [distorted], tmp_path / "work")

    assert report.aligned, report.reason
    assert "mesh" in caplog.text
    aligned = fits_pixels(paths[1])
    unaligned = fits_pixels(distorted)
    # Away from the edges, where stars cut by the fill would bias the measure.
    near, far = slice(8, 168), slice(-168, -8)
    corners = [(near, near), (near, far), (far, near), (far, far)]
    before = [magnitude(measure_shift(reference[c], unaligned[c])) for c in corners]
    after = [magnitude(measure_shift(reference[c], aligned[c])) for c in corners]
    assert max(before) > 1.0
    assert max(after) < 0.15
