"""The label both renderers draw, and the encodings of the three formats."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from fits2image.conversions import _add_label
from PIL import Image

from tests.support.imaging import decode
from thumbservice.adapters.rendering.engine.labels import (
    ELLIPSIS,
    FONT_PATH,
    MIN_FONT_SIZE,
    draw_label,
    fit_label,
)
from thumbservice.adapters.rendering.worker import encode
from thumbservice.domain.spec import MAX_LABEL_LENGTH, ThumbnailSpec


def sky(width: int = 300, height: int = 200) -> Image.Image:
    values = np.random.default_rng(7).integers(0, 90, size=(height, width), dtype=np.uint8)
    return Image.fromarray(values, "L")


def spec(**query: str) -> ThumbnailSpec:
    return ThumbnailSpec.from_query("1", query)


FILENAME = "ogg0m404-kb82-20190321-0123-e91.fits.fz"


@pytest.mark.parametrize(
    ("width", "text"),
    [(300, "So many stars"), (120, "So many stars"), (200, FILENAME), (600, FILENAME)],
)
def test_a_label_that_fits_gets_fits2images_pixels(width: int, text: str) -> None:
    """At `MIN_FONT_SIZE` or larger, the label is drawn as fits2image draws it."""
    assert fit_label(text, width, FONT_PATH)[0] == text
    theirs = sky(width)
    _add_label(theirs, text, str(FONT_PATH))
    ours = sky(width).convert("RGB")
    draw_label(ours, text, FONT_PATH)
    assert np.array_equal(np.asarray(theirs.convert("RGB")), np.asarray(ours))


def test_a_label_too_long_for_the_smallest_size_is_cut_there() -> None:
    shown, font = fit_label(FILENAME, 120, FONT_PATH)
    assert font.size == MIN_FONT_SIZE
    assert shown.endswith(ELLIPSIS) and FILENAME.startswith(shown[:-1])


@pytest.mark.parametrize("character", ["x", "星", "🔭"])
def test_the_longest_label_is_cut_at_a_readable_size_quickly(character: str) -> None:
    text = character * MAX_LABEL_LENGTH
    started = time.perf_counter()
    shown, font = fit_label(text, 300, FONT_PATH)
    image = sky().convert("RGB")
    draw_label(image, text, FONT_PATH)
    assert time.perf_counter() - started < 1.0
    assert font.size == MIN_FONT_SIZE
    assert shown.endswith(ELLIPSIS) and 1 < len(shown) < 100
    left, _, right, _ = font.getbbox(shown)
    assert right - left <= 300 - 4
    longer = font.getbbox(text[: len(shown)] + ELLIPSIS)
    assert longer[2] - longer[0] > 300 - 4, "the cut is not the longest prefix that fits"
    assert np.asarray(image)[-20:, :50].max() > 150, "no label drawn in the lower left corner"


@pytest.mark.parametrize("width", [1, 3, 8, 20])
def test_a_label_on_a_tiny_image_never_fails(width: int) -> None:
    image = sky(width, 10).convert("RGB")
    draw_label(image, "a label much wider than the image", FONT_PATH)
    shown, _ = fit_label("a label much wider than the image", width, FONT_PATH)
    assert shown.endswith(ELLIPSIS)


def test_a_missing_font_only_costs_the_label(caplog: pytest.LogCaptureFixture) -> None:
    image = sky().convert("RGB")
    before = np.asarray(image).copy()
    draw_label(image, "stars", "/nonexistent/font.ttf")
    assert np.array_equal(before, np.asarray(image))
    assert "Could not draw the label" in caplog.text


def test_jpeg_is_encoded_as_fits2image_saves_it() -> None:
    image = sky().convert("RGB")
    expected = io.BytesIO()
    image.save(expected, "JPEG", quality=80, progressive=False)
    assert encode(image, spec()) == expected.getvalue()
    assert encode(image, spec(format="jpeg", quality="80")) == expected.getvalue()


def test_png_is_lossless_and_ignores_quality() -> None:
    image = sky()
    data = encode(image, spec(format="png"))
    assert data == encode(image, spec(format="png", quality="5"))
    decoded = decode(data, "PNG")
    assert decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), np.asarray(image.convert("RGB")))


def test_webp_is_lossy_at_the_requested_quality() -> None:
    image = sky()
    low = encode(image, spec(format="webp", quality="10"))
    high = encode(image, spec(format="webp", quality="95"))
    assert len(low) < len(high)
    decoded = decode(high, "WEBP")
    assert decoded.size == image.size
    difference = np.abs(np.asarray(decoded.convert("L"), float) - np.asarray(image, float))
    assert difference.mean() < 8
