"""Colour maps and invert: a table from the 8-bit grey level to RGB, applied after the
picture is made.

The colours are the `cmap` library's (no dependencies; it carries matplotlib's, CET's,
cmocean's and others' maps as published), looked up by the grey level itself: `cmap`
indexes its 256-colour table directly with an integer level, as matplotlib does with
`bytes=True`. Inverting turns level v into 255 - v before the map, so a map comes out
reversed and grey comes out dark on light.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from thumbservice.domain.display import ColourMap, DisplayOptions

LIBRARY_NAMES = {
    ColourMap.VIRIDIS: "bids:viridis",
    ColourMap.MAGMA: "bids:magma",
    ColourMap.INFERNO: "bids:inferno",
    ColourMap.PLASMA: "bids:plasma",
    ColourMap.CIVIDIS: "cividis:cividis",
    # DS9's heat (black, red, yellow, white) is matplotlib's gist_heat.
    ColourMap.HEAT: "matplotlib:gist_heat",
    # DS9's cool (black, blue, cyan, white): cmocean's ice.
    ColourMap.COOL: "cmocean:ice",
    # DS9's rainbow (violet, blue, green, yellow, red): matplotlib's rainbow.
    ColourMap.RAINBOW: "gnuplot:rainbow",
    ColourMap.HOT: "matlab:hot",
    ColourMap.CUBEHELIX: "cubehelix:cubehelix",
    ColourMap.TURBO: "google:turbo",
}
"""Each map's name in the `cmap` catalogue (fully namespaced: the short names are aliases)."""


@functools.cache
def colour_table(cmap: ColourMap) -> np.ndarray:
    """The 256 x 3 uint8 RGB colours of the grey levels 0 to 255."""
    if cmap is ColourMap.GREY:
        levels = np.arange(256, dtype=np.uint8)
        return np.stack([levels] * 3, axis=1)
    from cmap import Colormap

    rgba = Colormap(LIBRARY_NAMES[cmap])(np.arange(256, dtype=np.uint8), bytes=True)
    return np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8)[:, :3])


def apply_colours(grey: Image.Image, options: DisplayOptions) -> Image.Image:
    """The RGB picture of a black-and-white one (mode L) under the options' map and invert."""
    if options.cmap is ColourMap.GREY and not options.invert:
        return grey.convert("RGB")
    levels = np.asarray(grey.convert("L"))
    if options.invert:
        levels = 255 - levels
    if options.cmap is ColourMap.GREY:
        return Image.fromarray(levels).convert("RGB")
    return Image.fromarray(colour_table(options.cmap)[levels], "RGB")


def invert_rgb(image: Image.Image) -> Image.Image:
    """A colour composite with every channel inverted (255 - v)."""
    from PIL import ImageOps

    return ImageOps.invert(image.convert("RGB"))
