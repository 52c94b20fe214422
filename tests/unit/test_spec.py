import pytest

from thumbservice.domain.errors import InvalidParameter
from thumbservice.domain.spec import FrameRef, ThumbnailSpec, cache_key


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
    with pytest.raises(InvalidParameter, match="label"):
        parse({"label": "x" * 300})


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
