"""The fast renderer's display options against astropy.visualization and the cmap library.

Each stretch and each interval is drawn at full size (no reduction) from a generated frame
and compared with `astropy.visualization.make_rgb` on the same data (the 8-bit image astropy
makes: `floor(255 * stretch(interval(data)))`), turned north-up as the thumbnail is: every
pixel within one grey level. A colour map's RGB is the library's map of those grey levels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy import visualization as vis
from astropy.io import fits
from cmap import Colormap
from fits2image.orientation import orient_array, orientation_transform

from tests.support import corpus
from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame
from thumbservice.adapters.rendering import worker
from thumbservice.adapters.rendering.engine import fast
from thumbservice.adapters.rendering.engine.colourmaps import LIBRARY_NAMES
from thumbservice.adapters.rendering.engine.labels import FONT_PATH
from thumbservice.domain.display import ColourMap, DisplayOptions
from thumbservice.domain.spec import ThumbnailSpec

FULL = 100_000


def frame_data(path: Path) -> tuple[np.ndarray, fits.Header]:
    with fits.open(path) as hdul:
        hdu = next(h for h in hdul if h.data is not None and h.data.ndim == 2)
        return np.asarray(hdu.data, dtype=np.float32), hdu.header


def rendered(paths: list[Path], query: dict[str, str], **options: object) -> np.ndarray:
    display = DisplayOptions.from_mapping(query)
    result = fast.render(
        paths, width=FULL, height=FULL, font_path=FONT_PATH, display=display, **options
    )
    return np.asarray(result.image).astype(int)


def astropy_grey(
    data: np.ndarray, header: fits.Header, interval: object, stretch: object
) -> np.ndarray:
    grey = vis.make_rgb(data, data, data, interval=interval, stretch=stretch)[..., 0]
    return orient_array(grey, orientation_transform(header), flip_v=True).astype(int)


def assert_within_one_level(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    difference = np.abs(ours - reference)
    assert difference.max() <= 1, f"{np.count_nonzero(difference > 1)} pixels off by more"
    # The bins of the level map move a few pixels by one level, not a large share of them.
    assert np.count_nonzero(difference) <= difference.size // 50


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("display")
    return write_frame(FrameSpec("display", width=320, height=208, noise_seed=4), directory)


@pytest.fixture(scope="module")
def data(frame: Path) -> tuple[np.ndarray, fits.Header]:
    return frame_data(frame)


STRETCHES = [
    ({"stretch": "linear"}, lambda d: vis.LinearStretch()),
    ({"stretch": "sqrt"}, lambda d: vis.SqrtStretch()),
    ({"stretch": "log"}, lambda d: vis.LogStretch()),
    ({"stretch": "log", "a": "50"}, lambda d: vis.LogStretch(50)),
    ({"stretch": "asinh"}, lambda d: vis.AsinhStretch()),
    ({"stretch": "asinh", "a": "0.02"}, lambda d: vis.AsinhStretch(0.02)),
    ({"stretch": "power", "power": "0.3"}, lambda d: vis.PowerStretch(0.3)),
    ({"stretch": "power", "power": "3"}, lambda d: vis.PowerStretch(3)),
    ({"stretch": "power", "power": "0.05"}, lambda d: vis.PowerStretch(0.05)),
    ({"stretch": "power", "power": "12"}, lambda d: vis.PowerStretch(12)),
    ({"stretch": "sinh"}, lambda d: vis.SinhStretch()),
    ({"stretch": "sinh", "a": "0.5"}, lambda d: vis.SinhStretch(0.5)),
    ({"stretch": "squared"}, lambda d: vis.SquaredStretch()),
    ({"stretch": "histeq", "interval": "zscale"}, lambda d: vis.HistEqStretch(d)),
]


@pytest.mark.parametrize(("query", "stretch"), STRETCHES, ids=lambda q: str(q))
def test_each_stretch_is_astropys(
    frame: Path, data: tuple[np.ndarray, fits.Header], query: dict[str, str], stretch: object
) -> None:
    values, header = data
    ours = rendered([frame], query)
    reference = astropy_grey(values, header, vis.ZScaleInterval(), stretch(values))  # type: ignore[operator]
    assert_within_one_level(ours[..., 0], reference)
    assert (ours[..., 0] == ours[..., 1]).all() and (ours[..., 1] == ours[..., 2]).all()


INTERVALS = [
    ({"interval": "zscale"}, lambda d: vis.ZScaleInterval()),
    ({"interval": "zscale", "contrast": "0.6"}, lambda d: vis.ZScaleInterval(contrast=0.6)),
    ({"interval": "minmax"}, lambda d: vis.MinMaxInterval()),
    ({"interval": "percentile"}, lambda d: vis.PercentileInterval(99.5)),
    ({"interval": "percentile", "percentile": "90"}, lambda d: vis.PercentileInterval(90)),
    ({"min_cut": "380", "max_cut": "700"}, lambda d: vis.ManualInterval(380, 700)),
    ({"min_cut": "420"}, lambda d: vis.ManualInterval(420, None)),
    ({"max_cut": "1500"}, lambda d: vis.ManualInterval(None, 1500)),
]


@pytest.mark.parametrize(("query", "interval"), INTERVALS, ids=lambda q: str(q))
@pytest.mark.parametrize("stretch", ["linear", "asinh", "histeq"])
def test_each_interval_is_astropys(
    frame: Path,
    data: tuple[np.ndarray, fits.Header],
    query: dict[str, str],
    interval: object,
    stretch: str,
) -> None:
    values, header = data
    ours = rendered([frame], {**query, "stretch": stretch})
    astropy_stretch = {
        "linear": vis.LinearStretch(),
        "asinh": vis.AsinhStretch(),
        "histeq": vis.HistEqStretch(values),
    }[stretch]
    reference = astropy_grey(values, header, interval(values), astropy_stretch)  # type: ignore[operator]
    assert_within_one_level(ours[..., 0], reference)


@pytest.mark.parametrize("stretch", ["log", "sqrt", "power"])
def test_a_steep_stretch_above_a_cut_over_the_sky(
    frame: Path, data: tuple[np.ndarray, fits.Header], stretch: str
) -> None:
    values, header = data
    query = {"stretch": stretch, "min_cut": "410", "max_cut": "5000"}
    astropy_stretch = {
        "log": vis.LogStretch(),
        "sqrt": vis.SqrtStretch(),
        "power": vis.PowerStretch(0.1),
    }[stretch]
    if stretch == "power":
        query["power"] = "0.1"
    reference = astropy_grey(values, header, vis.ManualInterval(410, 5000), astropy_stretch)
    assert_within_one_level(rendered([frame], query)[..., 0], reference)


def test_histeq_takes_the_whole_range_by_default(
    frame: Path, data: tuple[np.ndarray, fits.Header]
) -> None:
    values, header = data
    reference = astropy_grey(values, header, vis.MinMaxInterval(), vis.HistEqStretch(values))
    assert_within_one_level(rendered([frame], {"stretch": "histeq"})[..., 0], reference)


def test_nan_is_black_and_infinities_clip_as_astropy_clips_them(tmp_path: Path) -> None:
    path, _ = corpus.write_with_bad_pixels(tmp_path, "bad", 256)
    values, header = frame_data(path)
    ours = rendered([path], {"stretch": "sqrt", "min_cut": "300", "max_cut": "900"})[..., 0]
    finite = np.nan_to_num(values, nan=-1e30, posinf=1e30, neginf=-1e30)
    reference = astropy_grey(finite, header, vis.ManualInterval(300, 900), vis.SqrtStretch())
    nan = orient_array(np.isnan(values), orientation_transform(header), flip_v=True)
    assert (ours[nan] == 0).all()
    assert_within_one_level(np.where(nan, 0, ours), np.where(nan, 0, reference))


def test_a_frame_read_in_bands_from_the_scratch_file_is_drawn_the_same(
    frame: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = {"stretch": "log", "interval": "percentile", "percentile": "99"}
    whole = rendered([frame], query)
    monkeypatch.setattr(fast, "IN_MEMORY_BYTES", 1 << 14)
    monkeypatch.setattr(fast, "READ_PIXELS", 1 << 12)
    monkeypatch.setattr(fast, "BAND_PIXELS", 1 << 11)
    banded = rendered([frame], query, workdir=tmp_path)
    assert (whole == banded).all()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cmap", [c for c in ColourMap if c is not ColourMap.GREY])
def test_a_colour_map_is_the_librarys_map_of_the_grey_levels(frame: Path, cmap: ColourMap) -> None:
    grey = rendered([frame], {"stretch": "asinh"})[..., 0]
    coloured = rendered([frame], {"stretch": "asinh", "cmap": cmap.value})
    expected = Colormap(LIBRARY_NAMES[cmap])(grey.astype(np.uint8), bytes=True)[..., :3]
    assert (coloured == expected).all()
    inverted = rendered([frame], {"stretch": "asinh", "cmap": cmap.value, "invert": "true"})
    again = Colormap(LIBRARY_NAMES[cmap])((255 - grey).astype(np.uint8), bytes=True)[..., :3]
    assert (inverted == again).all()


def test_a_colour_map_over_fits2images_picture_keeps_its_grey_levels(frame: Path) -> None:
    grey = rendered([frame], {})[..., 0]
    viridis = rendered([frame], {"cmap": "viridis"})
    assert (viridis == Colormap("bids:viridis")(grey.astype(np.uint8), bytes=True)[..., :3]).all()
    assert (rendered([frame], {"invert": "true"})[..., 0] == 255 - grey).all()


@pytest.fixture(scope="module")
def colour_frames(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("display-colour")
    return corpus.write_color(directory, "rvb", 256)


def colour_reference(paths: list[Path], interval: object, stretch: object) -> np.ndarray:
    channels = [frame_data(p) for p in paths]
    rgb = vis.make_rgb(*(c[0] for c in channels), interval=interval, stretch=stretch)
    transform = orientation_transform(channels[0][1])
    return np.dstack([orient_array(rgb[..., i], transform, flip_v=True) for i in range(3)]).astype(
        int
    )


def test_a_colour_composite_with_manual_cuts_is_make_rgbs(colour_frames: list[Path]) -> None:
    query = {"stretch": "asinh", "min_cut": "350", "max_cut": "1200"}
    ours = rendered(colour_frames, query, color=True, align=False)
    reference = colour_reference(colour_frames, vis.ManualInterval(350, 1200), vis.AsinhStretch())
    for channel in range(3):
        assert_within_one_level(ours[..., channel], reference[..., channel])


def test_each_channel_takes_its_own_interval_unless_joint(colour_frames: list[Path]) -> None:
    separate = rendered(
        colour_frames, {"stretch": "linear", "interval": "minmax"}, color=True, align=False
    )
    reference = colour_reference(colour_frames, vis.MinMaxInterval(), vis.LinearStretch())
    for channel in range(3):
        assert_within_one_level(separate[..., channel], reference[..., channel])
    joint = rendered(
        colour_frames,
        {"stretch": "linear", "interval": "minmax", "joint_interval": "true"},
        color=True,
        align=False,
    )
    together = np.stack([frame_data(p)[0] for p in colour_frames])
    low, high = vis.MinMaxInterval().get_limits(together)
    shared = colour_reference(colour_frames, vis.ManualInterval(low, high), vis.LinearStretch())
    for channel in range(3):
        assert_within_one_level(joint[..., channel], shared[..., channel])
    assert not (joint == separate).all()


def test_an_aligned_composite_with_options_is_drawn(colour_frames: list[Path]) -> None:
    def draw(query: dict[str, str]) -> tuple[np.ndarray, bool | None]:
        result = fast.render(
            colour_frames, width=200, height=200, color=True, font_path=FONT_PATH,
            display=DisplayOptions.from_mapping(query),
        )  # fmt: skip
        return np.asarray(result.image).astype(int), result.aligned

    plain, aligned = draw({"stretch": "log"})
    inverted, _ = draw({"stretch": "log", "invert": "true"})
    assert aligned is True
    assert plain.shape == (200, 200, 3) and plain.std() > 5
    assert (inverted == 255 - plain).all()
    default, _ = draw({})
    assert np.median(plain) > np.median(default) + 20  # log lifts the sky


# The default picture: the PNG (its pixels) and the JPEG of each corpus case at a reduced size
# and at full size, as the renderer drew them before display options existed.
PINNED = {
    ("e91 RICE 768²", 150): ("55d67f297144a569", "66f8fd5a19332c87"),
    ("e91 RICE 768²", FULL): ("3e3cc8c41c1926b7", "fbd24cfd190f980b"),
    ("e91 RICE 512²", 150): ("969d56b20232e689", "064fd7399039d186"),
}


def _pinned() -> dict[tuple[str, int], tuple[str, str]]:
    table = Path(__file__).with_name("display_default_digests.txt").read_text().splitlines()
    pinned: dict[tuple[str, int], tuple[str, str]] = {}
    for line in table:
        name, size, png, jpeg = line.rsplit(" ", 3)
        pinned[(name, int(size))] = (png, jpeg)
    return pinned


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Case]:
    directory = tmp_path_factory.mktemp("corpus")
    return {case.name: case for case in corpus.build_corpus(directory, big=768, small=512)}


def test_the_default_picture_is_unchanged(cases: dict[str, corpus.Case]) -> None:
    pinned = _pinned()
    assert PINNED.items() <= pinned.items()
    assert {name for name, _ in pinned} == set(cases)
    png = ThumbnailSpec.from_query("1", {"format": "png"})
    jpeg = ThumbnailSpec.from_query("1", {"stretch": "FITS2IMAGE", "cmap": "grey"})
    assert jpeg.display.is_default
    for (name, size), digests in pinned.items():
        case = cases[name]
        result = fast.render(
            case.paths, width=size, height=size, font_path=FONT_PATH, **case.options
        )  # type: ignore[arg-type]
        got = tuple(
            hashlib.sha256(worker.encode(result.image, spec)).hexdigest()[:16]
            for spec in (png, jpeg)
        )
        assert got == digests, (name, size)


def test_the_fits2image_renderer_hands_display_options_to_the_fast_one(
    frame: Path, tmp_path: Path
) -> None:
    spec = ThumbnailSpec.from_query("1", {"stretch": "sqrt", "cmap": "magma", "width": "120"})
    outcomes = []
    for renderer in ("fits2image", "fast"):
        job = worker.RenderJob((str(frame),), str(tmp_path), spec, 1 << 26, renderer=renderer)
        outcomes.append(worker.render(job).data)
    assert outcomes[0] == outcomes[1]
    default = ThumbnailSpec.from_query("1", {"width": "120"})
    plain = [
        worker.render(
            worker.RenderJob((str(frame),), str(tmp_path), default, 1 << 26, renderer=r)
        ).data
        for r in ("fits2image", "fast")
    ]
    assert plain[0] != outcomes[0] and plain[1] != outcomes[0]
