"""The frame cache for real: pictures written to files, views drawn from them in the render
workers, and each view's bytes compared with a fresh render of the same request."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.corpus import Case, build_corpus, write_e91
from thumbservice.adapters.rendering import views
from thumbservice.adapters.rendering.engine import fast
from thumbservice.adapters.rendering.engine.labels import FONT_PATH
from thumbservice.adapters.rendering.framecache import (
    FrameCache,
    checksum,
    entry_bytes,
    entry_path,
    open_picture,
    write_entry,
)
from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
from thumbservice.adapters.rendering.worker import encode
from thumbservice.domain.spec import FrameRef, ImageFormat, ThumbnailSpec

SIZES = (100, 200, 500, 1000, 5000)  # 5000: the full picture, never enlarged
LABELS = ("", "ogg1m001-fa16-20190321-0101-e91 rp 60s")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("corpus"), big=1024, small=384)


def spec_of(case: Case, size: int, label: str, image_format: ImageFormat) -> ThumbnailSpec:
    options = case.options
    return ThumbnailSpec(
        FrameRef(frame_id=1),
        width=size,
        height=size,
        label=label or str(options.get("label", "")),
        color=bool(options.get("color", False)),
        median=bool(options.get("median", False)),
        percentile=float(options.get("percentile", 99.5)),  # type: ignore[arg-type]
        format=image_format,
        quality=70,
    )


def fresh_image(case: Case, spec: ThumbnailSpec, workdir: Path) -> Image.Image:
    return fast.render(
        case.paths, width=spec.width, height=spec.height, label=spec.label, color=spec.color,
        median=spec.median, percentile=spec.percentile, font_path=FONT_PATH, workdir=workdir,
    ).image  # fmt: skip


def fresh(case: Case, spec: ThumbnailSpec, workdir: Path) -> bytes:
    return encode(fresh_image(case, spec, workdir), spec)


def test_every_view_from_the_cache_is_the_fresh_renders_bytes(
    corpus: list[Case], tmp_path: Path
) -> None:
    """Each corpus frame at 100, 200, 500, 1000 px and full size, with and without a label,
    in the three formats: the view drawn from the kept picture has the same bytes as a fresh
    render of the same request. Only each frame's first view renders from the file."""
    cache = tmp_path / "frames"
    compared = renders = 0
    for number, case in enumerate(corpus):
        key = f"case{number}"
        keep = views.Keep(str(cache), key, 1 << 30)
        for size in SIZES:
            for label in LABELS:
                reference = None
                for image_format in ImageFormat:
                    spec = spec_of(case, size, label, image_format)
                    reference = reference or fresh_image(case, spec, tmp_path)
                    image = views.draw_from_cache(cache, key, spec)
                    if image is None:
                        renders += 1
                        image = views.render_and_keep(
                            case.paths, spec, keep, workdir=tmp_path
                        ).image
                    assert encode(image, spec) == encode(reference, spec), (
                        case.name, size, label, image_format,
                    )  # fmt: skip
                    compared += 1
        assert entry_path(cache, key).is_file()
    assert compared == len(corpus) * len(SIZES) * len(LABELS) * len(ImageFormat)
    assert renders == len(corpus)
    assert not list(cache.glob(".*")), "no partial entry is left"


def test_the_picture_as_an_array(corpus: list[Case], tmp_path: Path) -> None:
    cache = tmp_path / "frames"
    bw = next(c for c in corpus if c.name == "quarter turn")
    spec = spec_of(bw, 200, "", ImageFormat.PNG)
    assert views.picture_array(cache, "turned") is None  # not held, no sources given
    pixels = views.picture_array(cache, "turned", bw.paths, spec)
    assert pixels is not None and pixels.dtype.name == "uint8" and pixels.ndim == 2
    assert not pixels.flags.writeable
    # oriented: the frame's WCS turns it a quarter, so its sides are swapped
    assert pixels.shape == (384, 288)
    again = views.picture_array(cache, "turned")
    assert again is not None and (again == pixels).all()
    color = next(c for c in corpus if c.name == "color")
    rgb = views.picture_array(cache, "color", color.paths, spec_of(color, 200, "", ImageFormat.PNG))
    assert rgb is not None and rgb.shape == (384, 384, 3)
    full = fast.render(color.paths, width=384, height=384, color=True, font_path=FONT_PATH)
    assert (np.asarray(full.image) == rgb).all()


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("frames")
    return [write_e91(directory, f"frame-{n}", 512, noise_seed=20 + n) for n in range(3)]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolRenderer]:
    pool = ProcessPoolRenderer(1, max_pixels=1 << 26)
    pool.start()
    yield pool
    pool.close()


@pytest.fixture
def pool_with_cache(
    pool: ProcessPoolRenderer, tmp_path: Path
) -> Iterator[tuple[ProcessPoolRenderer, FrameCache, list[int]]]:
    """The module's pool with a cache of its own, room for one 512x512 picture."""
    evictions: list[int] = []
    cache = FrameCache(
        tmp_path / "frames", entry_bytes(512, 512, 1) + 1000, on_evict=evictions.append
    )
    pool.frame_cache = cache
    yield pool, cache, evictions
    pool.frame_cache = None


def bw(size: int = 200, label: str = "") -> ThumbnailSpec:
    return ThumbnailSpec(FrameRef(frame_id=1), width=size, height=size, label=label)


async def test_the_least_recently_used_picture_makes_room(
    pool_with_cache: tuple[ProcessPoolRenderer, FrameCache, list[int]],
    frames: list[Path],
    tmp_path: Path,
) -> None:
    pool, cache, evictions = pool_with_cache
    first = await pool.render_and_keep("a", [frames[0]], bw(), tmp_path)
    assert pool.holds("a") and cache.bytes_in_use == entry_bytes(512, 512, 1)
    assert await pool.draw("a", bw(300)) is not None
    await pool.render_and_keep("b", [frames[1]], bw(), tmp_path)
    assert pool.holds("b") and not pool.holds("a")
    assert not entry_path(cache.directory, "a").exists()
    assert cache.bytes_in_use == entry_bytes(512, 512, 1) <= cache.max_bytes
    assert evictions == [1]
    assert await pool.draw("a", bw()) is None
    assert first == await pool.render_and_keep("a", [frames[0]], bw(), tmp_path)
    assert sorted(p.name for p in cache.directory.iterdir()) == ["a.picture"]


def test_lru_order_follows_use(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, 300)
    for key in "abc":
        (tmp_path / f"{key}.picture").write_bytes(b"x")
        cache.added(key, 100)
    cache.used("a")  # b is now the oldest
    (tmp_path / "d.picture").write_bytes(b"x")
    cache.added("d", 100)
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    assert not (tmp_path / "b.picture").exists()
    cache.added("huge", 1000)  # larger than the whole cache: not kept
    assert "huge" not in cache and cache.bytes_in_use == 300
    assert FrameCache(tmp_path, 0).enabled is False


@pytest.mark.parametrize("damage", ["flipped", "truncated", "foreign"])
async def test_a_damaged_entry_is_discarded_and_rebuilt(
    pool_with_cache: tuple[ProcessPoolRenderer, FrameCache, list[int]],
    frames: list[Path],
    tmp_path: Path,
    damage: str,
) -> None:
    pool, cache, _ = pool_with_cache
    expected = await pool.render_and_keep("a", [frames[2]], bw(400), tmp_path)
    path = entry_path(cache.directory, "a")
    size = path.stat().st_size
    with path.open("r+b") as entry:
        if damage == "flipped":
            entry.seek(size // 2)
            byte = entry.read(1)
            entry.seek(size // 2)
            entry.write(bytes([byte[0] ^ 0x40]))
        elif damage == "truncated":
            entry.truncate(size - 4096)
        else:
            entry.write(b"NOTOURS!")
    assert await pool.draw("a", bw(400)) is None
    assert not pool.holds("a") and not path.exists() and cache.bytes_in_use == 0
    assert await pool.render_and_keep("a", [frames[2]], bw(400), tmp_path) == expected
    assert await pool.draw("a", bw(400)) == expected


async def test_a_view_of_an_entry_gone_from_the_disk_forgets_it(
    pool_with_cache: tuple[ProcessPoolRenderer, FrameCache, list[int]],
    frames: list[Path],
    tmp_path: Path,
) -> None:
    """A deep-zoom view of a kept picture whose file has gone answers "render it from the
    files" (width 0), and the index forgets the entry rather than count its bytes."""
    pool, cache, _ = pool_with_cache
    await pool.render_and_keep("a", [frames[0]], bw(), tmp_path)
    assert pool.holds("a")
    entry_path(cache.directory, "a").unlink()
    view = await pool.render_view([], bw(), None, Path(), picture="a")
    assert view.width == 0
    assert not pool.holds("a") and cache.bytes_in_use == 0


def test_a_partial_entry_is_never_read(tmp_path: Path) -> None:
    pixels = np.full((4, 4), 7, np.uint8)
    write_entry(tmp_path / "elsewhere", "k", pixels)
    whole = (tmp_path / "elsewhere" / "k.picture").read_bytes()
    # An entry still being written lives under a temporary name: it is never the entry.
    (tmp_path / ".k.123.0badcafe.partial").write_bytes(whole)
    assert open_picture(entry_path(tmp_path, "k")) is None
    assert write_entry(tmp_path, "k", pixels) == len(whole)
    picture = open_picture(entry_path(tmp_path, "k"))
    assert picture is not None and int(picture.pixels.sum()) == 7 * 16
    assert not picture.pixels.flags.writeable
    picture.close()


def test_the_checksum_sees_a_changed_word_and_a_zeroed_page() -> None:
    pixels = np.random.default_rng(1).integers(0, 255, (64, 100), dtype=np.uint8)
    base = checksum(pixels)
    changed = pixels.copy()
    changed[10, 13] ^= 1
    zeroed = pixels.copy()
    zeroed.reshape(-1)[:4096] = 0
    tail = pixels.copy()
    tail[-1, -1] ^= 0x80
    assert len({base, checksum(changed), checksum(zeroed), checksum(tail)}) == 4


@pytest.fixture
def small_file_limit() -> Iterator[int]:
    """Files this process writes may not grow past 64 KiB (the disk is full for an entry)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = 64 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_full_disk_while_writing_an_entry_still_answers(
    frames: list[Path], tmp_path: Path, small_file_limit: int
) -> None:
    cache = tmp_path / "frames"
    spec = bw(300, "still answered")
    kept = views.render_and_keep([frames[0]], spec, views.Keep(str(cache), "k", 1 << 30))
    assert kept.kept_bytes == 0
    assert list(cache.iterdir()) == []  # nothing kept, nothing partial left
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert encode(kept.image, spec) == fresh(Case("f", [frames[0]]), spec, tmp_path)


def test_with_fits2image_as_the_renderer_views_are_its_fresh_renders(
    corpus: list[Case], tmp_path: Path
) -> None:
    """RENDERER=fits2image keeps fits2image's own full picture and draws views from it."""
    from thumbservice.adapters.rendering import fits2image_renderer

    cache = tmp_path / "frames"
    for case in (c for c in corpus if c.name in ("quarter turn", "median 90", "color")):
        key = case.name.replace(" ", "")
        keep = views.Keep(str(cache), key, 1 << 30)
        for size in (100, 5000):
            spec = spec_of(case, size, "a label", ImageFormat.PNG)
            expected = fits2image_renderer.render(
                case.paths, width=size, height=size, label=spec.label, color=spec.color,
                median=spec.median, percentile=spec.percentile, font_path=FONT_PATH,
                workdir=tmp_path,
            ).image  # fmt: skip
            image = views.draw_from_cache(cache, key, spec)
            if image is None:
                kept = views.render_and_keep(
                    case.paths, spec, keep, renderer="fits2image", workdir=tmp_path
                )
                assert kept.kept_bytes > 0
                image = kept.image
            assert encode(image, spec) == encode(expected, spec), (case.name, size)


DISPLAY_QUERIES = (
    {"stretch": "asinh", "cmap": "viridis"},
    {"stretch": "log", "interval": "minmax", "invert": "true"},
    {"stretch": "linear", "interval": "percentile", "percentile": "99", "cmap": "heat"},
    {"stretch": "histeq"},
)


@pytest.mark.parametrize("query", DISPLAY_QUERIES, ids=lambda q: ",".join(q.values()))
def test_display_options_from_the_cache_are_the_fresh_renders_bytes(
    corpus: list[Case], tmp_path: Path, query: dict[str, str]
) -> None:
    """A non-default stretch, interval and colour map: every size and format drawn from the
    kept picture has the bytes of a fresh render with the same options; another colour map of
    the same stretch is drawn from the same picture (the map is applied to each view)."""
    cache = tmp_path / "frames"
    for number, case in enumerate(c for c in corpus if not c.options.get("color")):
        first = True
        for size in (100, 500, 5000):
            for image_format in (ImageFormat.JPEG, ImageFormat.PNG):
                base = spec_of(case, size, "", image_format)
                spec = ThumbnailSpec.from_query(
                    "1", {**query, "width": str(size), "height": str(size),
                          "format": image_format.value, "quality": "70"},
                )  # fmt: skip
                assert spec.width == base.width
                key = f"display{number}"
                image = views.draw_from_cache(cache, key, spec)
                assert (image is None) == first
                if image is None:
                    image = views.render_and_keep(
                        case.paths, spec, views.Keep(str(cache), key, 1 << 30), workdir=tmp_path
                    ).image
                first = False
                reference = fast.render(
                    case.paths, width=size, height=size, font_path=FONT_PATH,
                    workdir=tmp_path, display=spec.display,
                ).image  # fmt: skip
                assert encode(image, spec) == encode(reference, spec), (case.name, size, query)
