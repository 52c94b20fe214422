"""Display options on the HTTP surface: the 400s in plain words, the options reaching the
renderer inside the spec, and each choice its own stored thumbnail."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.http.conftest import Fakes
from thumbservice.domain.display import DisplayOptions, Stretch


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "stretch=cubic",
            "stretch must be one of fits2image, linear, sqrt, log, asinh, power, sinh, "
            "squared, histeq, got 'cubic'",
        ),
        (
            "interval=sigma",
            "interval must be one of zscale, minmax, percentile, manual, got 'sigma'",
        ),
        (
            "cmap=jet",
            "cmap must be one of grey, viridis, magma, inferno, plasma, cividis, heat, cool, "
            "rainbow, hot, cubehelix, turbo, got 'jet'",
        ),
        ("min_cut=5&max_cut=5", "min_cut must be below max_cut, got min_cut=5 and max_cut=5"),
        ("interval=percentile&percentile=0", "percentile must be in (0, 100], got '0'"),
        ("interval=percentile&percentile=101", "percentile must be in (0, 100], got '101'"),
        (
            "min_cut=NaN",
            "min_cut must be a finite number written in digits (such as 0.5, -20 or 1e4), "
            "got 'NaN'",
        ),
        (
            "max_cut=-Infinity",
            "max_cut must be a finite number written in digits (such as 0.5, -20 or 1e4), "
            "got '-Infinity'",
        ),
        ("stretch=asinh&a=1e400", "a must be a finite number, got '1e400'"),
        (
            "color=true&cmap=viridis",
            "cmap=viridis colours a black-and-white thumbnail; a color=true thumbnail takes its "
            "colours from the red, visual and blue frames",
        ),
        (
            "median=true&stretch=log",
            "median=true is fits2image's stretch and cannot be combined with stretch=log; "
            "leave out one of them",
        ),
    ],
)
async def test_bad_display_options_are_400s_naming_the_parameter(
    client: TestClient, fakes: Fakes, query: str, message: str
) -> None:
    answer = await client.get(f"/101/?{query}")
    assert answer.status == 400
    assert (await answer.json()) == {"message": message}
    assert fakes.renderer.calls == []


async def test_the_options_reach_the_renderer_in_the_spec(client: TestClient, fakes: Fakes) -> None:
    answer = await client.get("/101/?stretch=ASINH&a=0.05&cmap=Magma&invert=yes&image=true")
    assert answer.status == 200
    spec = fakes.renderer.calls[-1][1]
    assert spec.display == DisplayOptions.from_mapping(
        {"stretch": "asinh", "a": "0.05", "cmap": "magma", "invert": "true"}
    )
    assert spec.display.stretch is Stretch.ASINH


async def test_each_choice_is_stored_once_under_its_own_key(
    client: TestClient, fakes: Fakes
) -> None:
    for query in (
        "",
        "stretch=fits2image&cmap=grey",
        "stretch=log",
        "stretch=Log&a=1000",
        "cmap=heat",
    ):
        assert (await client.get(f"/101/?{query}")).status == 200
    assert len(fakes.store.objects) == 3
    assert len(fakes.renderer.calls) == 3
