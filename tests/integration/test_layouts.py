"""Every way a FITS file can store the image gets a thumbnail, fits2image's picture where it
draws one: each tile compression, data type, scaling, blank, HDU position, extra axes, strips.

The layouts are written by astropy (`corpus.build_layouts`), small, so that all of them are
rendered by both renderers in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from fits2image import scaling
from fits2image.orientation import orientation_transform
from PIL import Image
from skimage.metrics import structural_similarity

from tests.support import corpus
from thumbservice.adapters.rendering import fits2image_renderer, worker
from thumbservice.adapters.rendering.engine import fast, layout
from thumbservice.adapters.rendering.engine.framefile import FrameFile, merged_header
from thumbservice.adapters.rendering.engine.labels import FONT_PATH
from thumbservice.domain.errors import UnreadableFrame
from thumbservice.domain.spec import ThumbnailSpec

FULL = 100_000


def render(module: object, paths: list[Path], size: int, **options: object) -> Image.Image:
    kwargs: dict = {"width": size, "height": size, "font_path": FONT_PATH, **options}
    return module.render(paths, **kwargs).image  # type: ignore[attr-defined]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def similarity(a: Image.Image, b: Image.Image) -> float:
    """SSIM of two RGB pictures; pictures thinner than its 7-pixel window must be equal."""
    assert a.size == b.size
    if min(a.size) < 7:
        return 1.0 if np.array_equal(pixels(a), pixels(b)) else 0.0
    return float(structural_similarity(pixels(a), pixels(b), channel_axis=2, data_range=255))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Layout]:
    built = corpus.build_layouts(tmp_path_factory.mktemp("layouts"))
    return {entry.name: entry for entry in built}


NAMES = corpus.LAYOUT_NAMES


@pytest.mark.parametrize("size", [40, FULL])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_every_layout_gets_fits2images_picture(
    layouts: dict[str, corpus.Layout], name: str, size: int
) -> None:
    entry = layouts[name]
    ours = render(fast, [entry.path], size)
    assert ours.mode == "RGB" and min(ours.size) >= 1
    assert np.ptp(pixels(ours)) > 0  # stars on a sky, not a blank picture
    if entry.same_as is not None:
        # The same values stored otherwise: read by the same path, the same bytes.
        assert np.array_equal(pixels(ours), pixels(render(fast, [entry.same_as], size)))
    if entry.fits2image:
        reference = render(fits2image_renderer, [entry.path], size)
        assert ours.size == reference.size
        assert similarity(ours, reference) >= 0.99
    elif np.prod(layout.image_shape(entry.path)) < fits2image_renderer.FEWEST_PIXELS:
        # Too few pixels for fits2image: RENDERER=fits2image gives the fast renderer's picture.
        assert np.array_equal(pixels(render(fits2image_renderer, [entry.path], size)), pixels(ours))
    else:
        with pytest.raises(UnreadableFrame):  # blank pixels: fits2image's scaling fails
            render(fits2image_renderer, [entry.path], size)


STRIPS = ["strip 765x1", "strip 40x10"]


@pytest.mark.parametrize("name", STRIPS)
@pytest.mark.parametrize("size", [200, 20])
def test_frames_under_2000_pixels_are_drawn_by_fits2images_algorithm(
    layouts: dict[str, corpus.Layout], name: str, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = layouts[name].path
    ours = render(fast, [path], size)
    # Through RENDERER=fits2image the frame is the fast renderer's: the same picture.
    assert np.array_equal(pixels(render(fits2image_renderer, [path], size)), pixels(ours))

    # fits2image itself fails on it: its sample step, pixels // 2000, is 0.
    from fits2image.conversions import fits_to_img

    with pytest.raises(ValueError, match="slice step cannot be zero"):
        fits_to_img(str(path), str(path.with_suffix(".tiff")), "TIFF", width=size, height=size)

    # With a step of 1, every pixel a sample, fits2image draws what the fast renderer drew.
    original = scaling.extract_samples

    def every_pixel(data: np.ndarray, header: fits.Header, nsamples: int = 2000) -> np.ndarray:
        return original(data, header, min(nsamples, data.size // 2 + 1))

    monkeypatch.setattr(scaling, "extract_samples", every_pixel)
    monkeypatch.setattr(fits2image_renderer, "FEWEST_PIXELS", 0)
    reference = render(fits2image_renderer, [path], size)
    assert similarity(ours, reference) >= 0.99


def test_a_cube_draws_its_first_plane_with_both_renderers(
    layouts: dict[str, corpus.Layout],
) -> None:
    cube = layouts["RICE_1 cube of 3 planes"].path
    with fits.open(cube) as hdul:
        assert hdul[1].shape == (3, 72, 96)
        planes = np.asarray(hdul[1].data)
    first = render(fast, [cube], FULL)
    assert first.size == (96, 72)
    # The first plane, not the others (north-up turns the rows over, as for any frame).
    flipped = np.flipud(planes[0])
    assert np.corrcoef(pixels(first.convert("L")).ravel(), flipped.ravel())[0, 1] > 0.5
    assert np.corrcoef(pixels(first.convert("L")).ravel(), np.flipud(planes[1]).ravel())[0, 1] < 0.5
    assert np.array_equal(pixels(render(fits2image_renderer, [cube], FULL)), pixels(first))


def test_the_shape_the_worker_checks_is_the_planes(layouts: dict[str, corpus.Layout]) -> None:
    for name in ("plain NAXIS4=1 uint16", "RICE_1 cube of 3 planes", "plain float32"):
        assert worker.image_shape(str(layouts[name].path)) == (72, 96)
    assert worker.image_shape(str(layouts["strip 765x1"].path)) == (1, 765)


def test_degenerate_axes_are_aligned_in_color_by_their_first_two_axes(tmp_path: Path) -> None:
    frames = corpus.write_color(tmp_path, "field", 256)
    degenerate = []
    for path in frames:
        with fits.open(path) as hdul:
            header = merged_header(hdul, hdul["SCI"])
            data = np.asarray(hdul["SCI"].data)
        target = tmp_path / f"{path.name.split('.')[0]}-naxis3.fits.fz"
        hdu = fits.CompImageHDU(data[None], header, compression_type="RICE_1", dither_seed=1)
        hdu.header["CTYPE3"], hdu.header["CRPIX3"], hdu.header["CRVAL3"] = "TIME", 1.0, 0.0
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(target)
        degenerate.append(target)
    ours = fast.render(degenerate, width=200, height=200, color=True, font_path=FONT_PATH)
    flat = fast.render(frames, width=200, height=200, color=True, font_path=FONT_PATH)
    reference = fits2image_renderer.render(
        degenerate, width=200, height=200, color=True, font_path=FONT_PATH
    )
    assert ours.aligned is True and reference.aligned is True
    assert similarity(ours.image, flat.image) >= 0.99
    assert similarity(ours.image, reference.image) >= 0.99


# The header: only the cards the renderer reads, with the merged header's answers.


def _sip_frame(directory: Path) -> Path:
    path = corpus.write_sinistro(directory, "sinistro", 128, 128)
    with fits.open(path) as hdul:
        primary = hdul[0].header
        primary["CTYPE1"], primary["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
        primary["A_ORDER"], primary["B_ORDER"] = 2, 2
        primary["A_2_0"], primary["B_0_2"] = 3e-5, 2e-5
        for index in range(200):
            primary[f"NOISE{index:03d}"] = (index * 1.5, "a card the renderer never reads")
        hdul.writeto(directory / "sip.fits")
    return directory / "sip.fits"


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_the_renderers_header_answers_as_the_merged_one(
    layouts: dict[str, corpus.Layout], tmp_path: Path
) -> None:
    paths = [
        _sip_frame(tmp_path),
        corpus.write_e91(tmp_path, "e91", 128),
        corpus.write_quarter_turn(tmp_path, "turned", 128, 96),
        corpus.write_spectrum(tmp_path, "spectrum", 128, 64),
        layouts["RICE_1 cube of 3 planes"].path,
        layouts["plain float32 in a later extension"].path,
    ]
    for path in paths:
        with fits.open(path) as hdul:
            hdu = layout.find_image_hdu(hdul)
            merged = merged_header(hdul, hdu)
            ours = layout.renderer_header(hdul, hdu)
        assert len(ours) < len(merged) or ours is merged  # an image in the primary: its own
        assert orientation_transform(ours) == orientation_transform(merged)
        for key in ("NAXIS1", "NAXIS2", "OBSTYPE"):
            assert ours.get(key) == merged.get(key)
        assert WCS(ours, naxis=2).to_header_string(relax=True) == WCS(
            merged, naxis=2
        ).to_header_string(relax=True)
    with fits.open(paths[0]) as hdul:
        assert "A_2_0" in layout.renderer_header(hdul, hdul[1])
        assert "NOISE001" not in layout.renderer_header(hdul, hdul[1])


# What cannot be drawn: a clear 422 in plain words, and nothing left behind.


@pytest.mark.parametrize("name", list(corpus.UNDRAWABLE))
def test_what_cannot_be_drawn_is_unreadable_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    path = corpus.UNDRAWABLE[name](tmp_path / "frames")
    workdir = tmp_path / "work"
    workdir.mkdir()
    for renderer in worker.RENDERERS:
        job = worker.RenderJob(
            sources=(str(path),),
            workdir=str(workdir),
            spec=ThumbnailSpec.from_query("1", {"width": "50", "height": "50"}),
            max_pixels=1 << 26,
            renderer=renderer,
        )
        with pytest.raises(UnreadableFrame) as raised:
            worker.render(job)
        message = str(raised.value)
        assert str(tmp_path) not in message and "Traceback" not in message
        assert message[0].isupper()
        assert list(workdir.iterdir()) == []


def test_a_section_astropy_cannot_read_falls_back_to_its_full_read(
    layouts: dict[str, corpus.Layout], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = layouts["GZIP_1 float32"].path
    expected = render(fast, [path], 40)

    class NoSections:
        def __getitem__(self, key: object) -> np.ndarray:
            raise ValueError("this layout has no sections")

    opened: list[FrameFile] = []
    original = FrameFile.__init__

    def without_sections(self: FrameFile, source: Path) -> None:
        original(self, source)
        self._section = NoSections()
        opened.append(self)

    monkeypatch.setattr(FrameFile, "__init__", without_sections)
    monkeypatch.setattr(fast, "IN_MEMORY_BYTES", 0)  # read in bands, through sections
    assert np.array_equal(pixels(render(fast, [path], 40)), pixels(expected))
    assert [frame.reader for frame in opened] == ["full read"]


def test_a_plane_with_non_standard_cards_is_handed_to_fits2image(tmp_path: Path) -> None:
    """Real headers carry cards astropy would refuse to write; the plane's file keeps them."""
    pixels_, header = corpus._field("cards", 96, 72, 23)
    path = tmp_path / "cards.fits"
    fits.PrimaryHDU(pixels_[None], header).writeto(path)
    raw = bytearray(path.read_bytes())
    end = raw.index(b"END" + b" " * 77)
    raw[end : end + 160] = b"BADVAL  = 12.3.4 / not a number".ljust(80) + b"END".ljust(80)
    path.write_bytes(bytes(raw))
    ours = render(fast, [path], FULL)
    assert np.array_equal(pixels(render(fits2image_renderer, [path], FULL)), pixels(ours))
