"""Any query string gives a ThumbnailSpec or a domain error, never another exception."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from thumbservice.domain.errors import InvalidParameter
from thumbservice.domain.spec import ThumbnailSpec

NAMES = ["width", "height", "label", "color", "median", "percentile", "quality", "image", "x"]
# Digits of every script, signs, separators, exponents, whitespace, controls, surrogates' kin.
ODD = st.sampled_from(
    ["²", "٣", "٠", "_", "e", "E", "+", "-", ".", " ", "\t", "\x00", "nan", "1e9"]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.sampled_from("0123456789"), ODD), max_size=12).map("".join),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
SEGMENTS = st.one_of(
    st.text(max_size=300),
    st.integers().map(str),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,30}(\.fits(\.fz)?)?", fullmatch=True),
)


def parse(segment: str, query: dict[str, str]) -> ThumbnailSpec | None:
    try:
        return ThumbnailSpec.from_query(segment, query)
    except InvalidParameter as err:
        assert err.message
        return None


@settings(max_examples=400, deadline=None)
@given(segment=SEGMENTS, query=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=9))
def test_any_query_gives_a_spec_or_a_domain_error(segment: str, query: dict[str, str]) -> None:
    spec = parse(segment, query)
    if spec is not None:
        assert 1 <= spec.width <= 5000 and 1 <= spec.height <= 5000
        assert 1 <= spec.quality <= 100
        assert 0 < spec.percentile <= 100
        assert (spec.frame.frame_id is None) != (spec.frame.basename is None)


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=200))
def test_any_raw_query_string_parses_or_is_refused(raw: str) -> None:
    parse("101", dict(parse_qsl(raw, keep_blank_values=True)))
