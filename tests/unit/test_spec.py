import re

import pytest

from thumbservice.domain.errors import InvalidParameter
from thumbservice.domain.spec import (
    KEY_PATTERN,
    MAX_LABEL_LENGTH,
    FrameRef,
    ImageFormat,
    ThumbnailSpec,
    cache_key,
)


def parse(query: dict[str, str], segment: str = "11245132", **kw: int) -> ThumbnailSpec:
    return ThumbnailSpec.from_query(segment, query, **kw)


def test_defaults_match_the_original_service() -> None:
    r = parse({})
    assert (r.width, r.height, r.label, r.color, r.median) == (200, 200, "", False, False)
    assert (r.percentile, r.quality, r.image) == (99.5, 80, False)
    assert r.frame == FrameRef(frame_id=11245132)


def test_all_parameters_are_read() -> None:
    r = parse(
        {
            "width": "4000",
            "height": "300",
            "label": "So many stars",
            "color": "true",
            "median": "True",
            "percentile": "98",
            "quality": "95",
            "image": "1",
        }
    )
    assert (r.width, r.height, r.label) == (4000, 300, "So many stars")
    assert r.color and r.median and r.image
    assert (r.percentile, r.quality) == (98.0, 95)


@pytest.mark.parametrize("value", ["abc", "1e3", "2.5", "-1", "0", "", " 12a", "１２", "+5"])
def test_width_must_be_positive_digits(value: str) -> None:
    if value == "":
        assert parse({"width": value}).width == 200  # empty means the default
        return
    with pytest.raises(InvalidParameter, match="width"):
        parse({"width": value})


def test_size_is_bounded_by_the_configured_maximum() -> None:
    assert parse({"height": "5000"}).height == 5000
    with pytest.raises(InvalidParameter, match="between 1 and 5000"):
        parse({"height": "5001"})
    with pytest.raises(InvalidParameter, match="between 1 and 300"):
        parse({"width": "301"}, max_size=300)


@pytest.mark.parametrize("value", ["0", "101", "-5", "50.5", "high"])
def test_quality_outside_1_to_100_is_refused(value: str) -> None:
    with pytest.raises(InvalidParameter, match="quality"):
        parse({"quality": value})


@pytest.mark.parametrize("value", ["0", "-1", "100.01", "nan", "inf", "x"])
def test_percentile_outside_0_100_is_refused(value: str) -> None:
    with pytest.raises(InvalidParameter, match="percentile"):
        parse({"percentile": value})


def test_percentile_accepts_the_closed_upper_bound() -> None:
    assert parse({"percentile": "100"}).percentile == 100.0
    assert parse({"percentile": "0.5"}).percentile == 0.5


@pytest.mark.parametrize("name", ["color", "median", "image"])
def test_unknown_boolean_spellings_are_refused(name: str) -> None:
    with pytest.raises(InvalidParameter, match=name):
        parse({name: "maybe"})


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("FALSE", False), ("", False)])
def test_boolean_spellings(text: str, expected: bool) -> None:
    assert parse({"color": text}).color is expected


def test_label_drops_control_characters_and_is_bounded() -> None:
    assert parse({"label": "a\nb\x00c"}).label == "abc"
    with pytest.raises(InvalidParameter, match=f"label must be at most {MAX_LABEL_LENGTH} char"):
        parse({"label": "x" * (MAX_LABEL_LENGTH + 1)})


def test_labels_as_long_as_a_url_carries_are_accepted() -> None:
    # The original service drew labels of any length; a URL that works everywhere has ~2,000.
    assert MAX_LABEL_LENGTH >= 2000
    assert parse({"label": "星" * MAX_LABEL_LENGTH}).label == "星" * MAX_LABEL_LENGTH
    # Characters dropped as unprintable do not count.
    assert len(parse({"label": "x" * MAX_LABEL_LENGTH + "\n"}).label) == MAX_LABEL_LENGTH


def test_format_defaults_to_jpeg_and_names_the_allowed_ones() -> None:
    assert parse({}).format is ImageFormat.JPEG
    assert parse({"format": ""}).format is ImageFormat.JPEG
    assert parse({"format": "png"}).format is ImageFormat.PNG
    assert parse({"format": "WebP"}).format is ImageFormat.WEBP
    for bad in ("jpg", "gif", "png8", "tiff"):
        with pytest.raises(InvalidParameter, match="format must be one of jpeg, png, webp"):
            parse({"format": bad})


def test_formats_know_their_key_suffix_and_media_type() -> None:
    assert [(f.extension, f.media_type) for f in ImageFormat] == [
        ("jpg", "image/jpeg"),
        ("png", "image/png"),
        ("webp", "image/webp"),
    ]
    for kind in ImageFormat:
        assert ImageFormat.of_key(f"7.{'0' * 32}.{kind.extension}") is kind
    with pytest.raises(ValueError):
        ImageFormat.of_key("7.x.gif")


def test_basename_and_filename_name_the_same_frame() -> None:
    assert parse({}, "ogg0m404-kb82-20190321-0273-e91").frame.basename == (
        "ogg0m404-kb82-20190321-0273-e91"
    )
    assert parse({}, "ogg0m404-kb82-20190321-0273-e91.fits.fz").frame.basename == (
        "ogg0m404-kb82-20190321-0273-e91"
    )


@pytest.mark.parametrize("segment", ["../etc", "a b", "<script>", "", "-leading", "x" * 300])
def test_bad_frame_names_are_refused(segment: str) -> None:
    with pytest.raises(InvalidParameter):
        parse({}, segment)


def test_frame_ids_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="range"):
        parse({}, "0")
    with pytest.raises(InvalidParameter, match="range"):
        parse({}, "9" * 30)


def test_cache_key_is_deterministic_and_names_the_frame() -> None:
    a = cache_key((42,), parse({"width": "300"}))
    assert a == cache_key((42,), parse({"width": "300", "image": "true"}))
    assert a.startswith("42.") and a.endswith(".jpg")


@pytest.mark.parametrize(
    "change",
    [
        {"width": "301"},
        {"height": "301"},
        {"label": "x"},
        {"color": "true"},
        {"median": "true"},
        {"quality": "81"},
    ],
)
def test_every_rendering_parameter_changes_the_key(change: dict[str, str]) -> None:
    base = {"width": "300"}
    assert cache_key((42,), parse(base)) != cache_key((42,), parse({**base, **change}))


def test_jpeg_keys_are_those_of_the_original_contract() -> None:
    """Thumbnails already stored stay valid: a JPEG's key has not changed with formats."""
    assert cache_key((1001,), parse({})) == "1001.f941169beb3839eab34b55d0814cd749.jpg"
    assert cache_key((1001,), parse({"format": "jpeg"})) == cache_key((1001,), parse({}))
    labelled = {"width": "300", "label": "So many stars", "quality": "95"}
    assert cache_key((1001,), parse(labelled)) == "1001.f42dfc0098c9468543d8f835e4bfebc0.jpg"
    color = {"color": "true", "median": "true", "percentile": "98.5"}
    assert cache_key((1001, 2, 3), parse(color)) == "1001.975a7ca751f5b22b45f9f0ab8d862ec7.jpg"


def test_the_format_is_in_the_key_and_its_name() -> None:
    keys = {f: cache_key((42,), parse({"format": f.value})) for f in ImageFormat}
    assert len(set(keys.values())) == 3
    for kind, key in keys.items():
        assert key.endswith(f".{kind.extension}")
        assert re.fullmatch(KEY_PATTERN, key)


def test_quality_changes_lossy_keys_only() -> None:
    for lossy in ("jpeg", "webp"):
        assert cache_key((1,), parse({"format": lossy, "quality": "50"})) != cache_key(
            (1,), parse({"format": lossy})
        )
    assert cache_key((1,), parse({"format": "png", "quality": "50"})) == cache_key(
        (1,), parse({"format": "png"})
    )


def test_percentile_matters_only_with_median() -> None:
    assert cache_key((1,), parse({"percentile": "90"})) == cache_key((1,), parse({}))
    assert cache_key((1,), parse({"median": "true", "percentile": "90"})) != cache_key(
        (1,), parse({"median": "true"})
    )


def test_other_frames_give_other_keys() -> None:
    r = parse({"color": "true"})
    assert cache_key((1, 2, 3), r) != cache_key((1, 2, 4), r)
    assert cache_key((1,), r) != cache_key((2,), r)


@pytest.mark.parametrize("value", ["0.5", "10", "50"])
def test_median_needs_a_percentile_above_the_median(value: str) -> None:
    with pytest.raises(InvalidParameter, match="above 50"):
        parse({"median": "true", "percentile": value})
    assert parse({"percentile": value}).percentile == float(value)  # without median: unused


def test_median_with_a_percentile_above_the_median() -> None:
    assert parse({"median": "true", "percentile": "50.5"}).percentile == 50.5
