"""The display step of a render: the options' stretch and interval in place of fits2image's
scaling, and their colour map after the picture is made.

Both ends are small and separate so that a renderer composes them with its own steps:

* `scaling(options)` is None for fits2image's own scaling, otherwise a `DisplayScaling`
  whose `for_channel(read, height, width, band_rows)` measures the interval on the rows
  `read` gives and returns a `LevelMap`, which maps float32 bands to 8-bit values as
  `zscale.GammaMap` does (`apply(values, may_be_nan, out)`). With `joint_interval`, one map
  is measured over the three colour frames together, first.
* `colours(image, options)` turns the finished 8-bit picture (mode L) into RGB through the
  colour map and invert; a colour composite is only inverted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from thumbservice.adapters.rendering.engine.colourmaps import apply_colours, invert_rgb
from thumbservice.adapters.rendering.engine.framefile import FrameFile
from thumbservice.adapters.rendering.engine.stretch import (
    DisplayScaling,
    LevelMap,
    chained,
    level_map,
    rows_source,
)
from thumbservice.domain.display import DisplayOptions

__all__ = ["DisplayScaling", "LevelMap", "colours", "scaling"]


def scaling(
    options: DisplayOptions | None,
    frames: Sequence[FrameFile] = (),
    band_pixels: int = 1 << 19,
) -> DisplayScaling | None:
    """None for fits2image's scaling; otherwise how each channel is scaled.

    For a joint interval over several `frames`, they are read once more here, as they lie
    in their files (before any alignment), and one map serves them all.
    """
    if options is None or options.scaling_is_default:
        return None
    if options.joint_interval and len(frames) > 1:
        sources = [
            rows_source(_reader(frame), frame.height, max(1, band_pixels // frame.width))
            for frame in frames
        ]
        total = sum(frame.height * frame.width for frame in frames)
        return DisplayScaling(options, shared=level_map(options, chained(sources), total))
    return DisplayScaling(options)


def _reader(frame: FrameFile) -> Callable[[int, int], np.ndarray]:
    def read(start: int, stop: int) -> np.ndarray:
        rows = frame.rows(start, stop).astype(np.float32)
        frame.release()
        return rows

    return read


def colours(image: Image.Image, options: DisplayOptions | None) -> Image.Image:
    """The finished picture in RGB, coloured and inverted as the options say."""
    if options is None:
        return image if image.mode == "RGB" else image.convert("RGB")
    if image.mode == "RGB":
        return invert_rgb(image) if options.invert else image
    return apply_colours(image, options)
