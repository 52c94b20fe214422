# ruff: noqa: E501  (the refusals are compared whole, one a line)
"""Display options: parsing, normalisation, what they refuse, and how they enter the key."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thumbservice.domain.display import (
    DEFAULT_DISPLAY,
    NAMES,
    ColourMap,
    DisplayOptions,
    Interval,
    Stretch,
)
from thumbservice.domain.errors import InvalidParameter
from thumbservice.domain.spec import ThumbnailSpec, cache_key


def options(**query: str) -> DisplayOptions:
    return DisplayOptions.from_mapping(query)


def refusal(query: dict[str, str]) -> str:
    with pytest.raises(InvalidParameter) as caught:
        ThumbnailSpec.from_query("101", query)
    return caught.value.message


def key(query: dict[str, str]) -> str:
    return cache_key((101,), ThumbnailSpec.from_query("101", query))


def test_no_option_is_fits2images_picture() -> None:
    assert options() == DEFAULT_DISPLAY
    assert DEFAULT_DISPLAY.is_default and DEFAULT_DISPLAY.as_pairs() == ()
    assert DEFAULT_DISPLAY.stretch is Stretch.FITS2IMAGE and DEFAULT_DISPLAY.interval is None


@pytest.mark.parametrize(
    "spelled_out",
    [
        {"stretch": "fits2image"},
        {"stretch": "FITS2Image", "cmap": "grey", "invert": "false"},
        {"cmap": "gray"},
        {"cmap": "Grey", "invert": "no", "joint_interval": "0"},
        {"stretch": "", "interval": ""},
    ],
)
def test_defaults_spelled_out_keep_todays_key(spelled_out: dict[str, str]) -> None:
    assert key(spelled_out) == key({}) == "101." + key({}).split(".")[1] + ".jpg"
    assert ThumbnailSpec.from_query("101", spelled_out).rendering_parameters() == (
        ThumbnailSpec.from_query("101", {}).rendering_parameters()
    )


def test_todays_keys_are_unchanged() -> None:
    # The pinned keys of tests/unit/test_spec.py, through the options' parser.
    spec = ThumbnailSpec.from_query("1001", {"stretch": "fits2image", "cmap": "GREY"})
    assert cache_key((1001,), spec) == "1001.f941169beb3839eab34b55d0814cd749.jpg"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"stretch": "linear"}, {"stretch": "Linear"}),
        ({"stretch": "linear"}, {"stretch": "linear", "interval": "zscale", "contrast": "0.25"}),
        ({"stretch": "asinh"}, {"stretch": "ASINH", "a": "0.1"}),
        ({"stretch": "log"}, {"stretch": "log", "a": "1000"}),
        ({"stretch": "log"}, {"stretch": "log", "a": "1e3"}),
        ({"stretch": "power"}, {"stretch": "power", "power": "1"}),
        ({"stretch": "histeq"}, {"stretch": "histeq", "interval": "minmax"}),
        ({"stretch": "linear", "interval": "manual"}, {"stretch": "linear", "interval": "minmax"}),
        (
            {"min_cut": "10", "max_cut": "20"},
            {"interval": "manual", "min_cut": "10.0", "max_cut": "2e1"},
        ),
        (
            {"min_cut": "10", "max_cut": "20"},
            {"stretch": "linear", "min_cut": "10", "max_cut": "20"},
        ),
        ({"interval": "percentile"}, {"interval": "percentile", "percentile": "99.5"}),
        ({"cmap": "viridis"}, {"cmap": "VIRIDIS", "invert": "false"}),
        ({"invert": "true"}, {"invert": "YES"}),
        ({"contrast": "0.5"}, {"stretch": "linear", "interval": "zscale", "contrast": ".5"}),
    ],
)
def test_equal_requests_written_differently_share_one_key(
    one: dict[str, str], other: dict[str, str]
) -> None:
    assert options(**one) == options(**other)
    assert key(one) == key(other)
    assert key(one) != key({})


def test_a_percentile_without_interval_keeps_its_meaning_for_median() -> None:
    assert options(percentile="90") == DEFAULT_DISPLAY
    spec = ThumbnailSpec.from_query("101", {"median": "true", "percentile": "90"})
    assert spec.display.is_default and spec.percentile == 90
    chosen = options(interval="percentile", percentile="90")
    assert chosen.interval is Interval.PERCENTILE and chosen.percentile == 90
    assert chosen.stretch is Stretch.LINEAR


def test_each_choice_is_its_own_key() -> None:
    choices = [
        {},
        *({"stretch": s.value} for s in Stretch if s is not Stretch.FITS2IMAGE),
        *({"stretch": "linear", "interval": i.value, "min_cut": "1"} for i in [Interval.MANUAL]),
        {"stretch": "linear", "interval": "minmax"},
        {"stretch": "linear", "interval": "percentile"},
        {"stretch": "linear", "interval": "percentile", "percentile": "90"},
        {"stretch": "linear", "contrast": "0.5"},
        {"stretch": "asinh", "a": "0.5"},
        {"stretch": "power", "power": "2"},
        {"max_cut": "100"},
        *({"cmap": c.value} for c in ColourMap if c is not ColourMap.GREY),
        {"invert": "true"},
        {"color": "true", "stretch": "linear"},
        {"color": "true", "stretch": "linear", "joint_interval": "true"},
    ]
    keys = [key(choice) for choice in choices]
    assert len(set(keys)) == len(keys)


def test_the_pairs_list_only_what_differs_sorted() -> None:
    chosen = options(stretch="Log", a="10", cmap="Magma", invert="on", min_cut="-5", max_cut="1e4")
    assert chosen.as_pairs() == (
        ("a", "10.0"),
        ("cmap", "magma"),
        ("invert", "true"),
        ("max_cut", "10000.0"),
        ("min_cut", "-5.0"),
        ("stretch", "log"),
    )
    assert (
        chosen.canonical()
        == "a=10.0;cmap=magma;invert=true;max_cut=10000.0;min_cut=-5.0;stretch=log"
    )
    assert DisplayOptions.from_mapping(dict(chosen.as_pairs())) == chosen


def test_the_grey_scaling_leaves_out_the_colours() -> None:
    chosen = options(stretch="sqrt", cmap="viridis", invert="true")
    assert chosen.scaling_only() == options(stretch="sqrt")
    assert options(cmap="heat").scaling_is_default
    assert not options(cmap="heat").is_default


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"stretch": "cubic"},
            "stretch must be one of fits2image, linear, sqrt, log, asinh, power, sinh, "
            "squared, histeq, got 'cubic'",
        ),
        (
            {"interval": "sigma"},
            "interval must be one of zscale, minmax, percentile, manual, got 'sigma'",
        ),
        ({"cmap": "jet"}, "cmap must be one of grey, viridis, magma, inferno, plasma, cividis, heat, cool, rainbow, hot, cubehelix, turbo, got 'jet'"),
        (
            {"min_cut": "10", "max_cut": "10"},
            "min_cut must be below max_cut, got min_cut=10 and max_cut=10",
        ),
        ({"min_cut": "20", "max_cut": "10"}, "min_cut must be below max_cut, got min_cut=20 and max_cut=10"),
        ({"interval": "percentile", "percentile": "0"}, "percentile must be in (0, 100], got '0'"),
        ({"interval": "percentile", "percentile": "100.5"}, "percentile must be in (0, 100], got '100.5'"),
        ({"min_cut": "nan"}, "min_cut must be a finite number written in digits (such as 0.5, -20 or 1e4), got 'nan'"),
        ({"max_cut": "inf"}, "max_cut must be a finite number written in digits (such as 0.5, -20 or 1e4), got 'inf'"),
        ({"max_cut": "1e999"}, "max_cut must be a finite number, got '1e999'"),
        ({"stretch": "log", "a": "-1"}, "a must be between 1e-06 and 1e+06, got '-1'"),
        ({"stretch": "linear", "a": "2"}, "a is the constant of stretch=log, asinh or sinh, not of stretch=linear"),
        ({"stretch": "power", "a": "2"}, "a is the constant of stretch=log, asinh or sinh, not of stretch=power (its exponent is power)"),
        ({"stretch": "log", "power": "2"}, "power is the exponent of stretch=power, not of stretch=log"),
        ({"stretch": "linear", "interval": "zscale", "min_cut": "1"}, "min_cut is for interval=manual, not interval=zscale"),
        ({"stretch": "linear", "interval": "minmax", "contrast": "0.3"}, "contrast is for interval=zscale, not interval=minmax"),
        ({"contrast": "0"}, "contrast must be in (0, 1], got '0'"),
        ({"stretch": "fits2image", "interval": "minmax"}, "interval: stretch=fits2image uses fits2image's own limits; choose a stretch (linear, sqrt, log, asinh, power, sinh, squared, histeq) to set an interval"),
        ({"invert": "maybe"}, "invert must be true or false, got 'maybe'"),
        ({"color": "true", "cmap": "viridis"}, "cmap=viridis colours a black-and-white thumbnail; a color=true thumbnail takes its colours from the red, visual and blue frames"),
        ({"stretch": "linear", "joint_interval": "true"}, "joint_interval=true is for color=true: it takes one interval over the three channels"),
        ({"color": "true", "joint_interval": "true"}, "joint_interval needs an interval: stretch=fits2image scales each channel on its own"),
        ({"median": "true", "stretch": "asinh"}, "median=true is fits2image's stretch and cannot be combined with stretch=asinh; leave out one of them"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_parameter(query: dict[str, str], message: str) -> None:
    assert refusal(query) == message


def test_manual_cuts_with_both_limits_need_no_joint_interval() -> None:
    joint = ThumbnailSpec.from_query(
        "101", {"color": "true", "min_cut": "1", "max_cut": "9", "joint_interval": "true"}
    )
    assert not joint.display.joint_interval
    one_side = options(min_cut="1", joint_interval="true")
    assert one_side.joint_interval and one_side.max_cut is None


# Any query: options or a domain error, never another exception; and the options read back.
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["0", "1", "-1", "1e3", ".5", "5.", "+2", "1e-7", "99.5", "100", "nan", "inf"]),
)
WORDS = st.one_of(
    st.sampled_from(
        [s.value for s in Stretch]
        + [i.value for i in Interval]
        + [c.value for c in ColourMap]
        + ["true", "false", "Yes", "OFF", "gray", "LOG", "MinMax", ""]
    ),
    st.text(max_size=12),
)
QUERIES = st.dictionaries(
    st.sampled_from([*NAMES, "median", "color", "width", "x"]),
    st.one_of(NUMBERS, WORDS),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(query=QUERIES)
def test_any_query_gives_options_or_a_domain_error(query: dict[str, str]) -> None:
    try:
        spec = ThumbnailSpec.from_query("101", query)
    except InvalidParameter as err:
        assert err.message
        return
    chosen = spec.display
    assert DisplayOptions.from_mapping(dict(chosen.as_pairs())) == chosen
    # Names are matched as they are, values in any case: upper-casing them changes nothing.
    shouted = {name: value.upper() for name, value in query.items()}
    assert ThumbnailSpec.from_query("101", shouted).display == chosen
    for number in (chosen.a, chosen.power, chosen.min_cut, chosen.max_cut, chosen.contrast):
        assert number is None or math.isfinite(number)
    if chosen.percentile is not None:
        assert 0 < chosen.percentile <= 100
    if chosen.min_cut is not None and chosen.max_cut is not None:
        assert chosen.min_cut < chosen.max_cut
    assert (chosen.interval is None) == (chosen.stretch is Stretch.FITS2IMAGE)


@settings(max_examples=200, deadline=None)
@given(pairs=st.dictionaries(st.sampled_from(NAMES), st.one_of(NUMBERS, WORDS), max_size=6))
def test_any_mapping_of_pairs_gives_options_or_a_domain_error(pairs: dict[str, str]) -> None:
    try:
        chosen = DisplayOptions.from_mapping(pairs)
    except InvalidParameter as err:
        assert err.message
        return
    assert DisplayOptions.from_mapping(dict(chosen.as_pairs())) == chosen
    assert dict(chosen.as_pairs()).keys() <= set(NAMES)
