"""The README's example pictures of the display options: one frame, four choices side by side.

Run from the repository root (deterministic: the same frame and pictures every time):

    .venv/bin/python scripts/display_examples.py        # writes docs/images/*.png

The frame is a generated 1024x1024 star field (`adapters/archive/dev/frames.py`) with a faint
nebula added, a few percent of the sky's level, which fits2image's picture barely shows and
a log or asinh stretch brings out. Each panel is the fast renderer's thumbnail at 300 px, as
the service draws it for the query printed under it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
from astropy.io import fits
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
SIZE = 300
GAP = 8
CAPTION = 36

from thumbservice.adapters.archive.dev.frames import (  # noqa: E402
    FrameSpec,
    frame_header,
    render_pixels,
)
from thumbservice.adapters.rendering.engine import fast  # noqa: E402
from thumbservice.adapters.rendering.engine.labels import FONT_PATH  # noqa: E402
from thumbservice.domain.display import DisplayOptions  # noqa: E402

CUTS = "a=0.02&min_cut=390&max_cut=2000"
SHEETS = {
    "display-stretches.png": [
        "",
        f"stretch=asinh&{CUTS}",
        "stretch=log&min_cut=390&max_cut=4000",
        "stretch=histeq",
    ],
    "display-colour-maps.png": [
        f"stretch=asinh&{CUTS}&cmap=viridis",
        f"stretch=asinh&{CUTS}&cmap=heat",
        "stretch=sqrt&min_cut=390&max_cut=1200&cmap=cool",
        f"stretch=asinh&{CUTS}&invert=true",
    ],
}


def nebula_frame(directory: Path) -> Path:
    """A star field with a faint, extended nebula: a few percent above the sky."""
    spec = FrameSpec("nebula", width=1024, height=1024, stars=300, field_seed=11, noise_seed=3)
    pixels, _ = render_pixels(spec)
    y, x = np.mgrid[0:1024, 0:1024].astype(np.float32)
    cloud = 60.0 * np.exp(-(((x - 560) / 210) ** 2 + ((y - 470) / 140) ** 2))
    filament = 35.0 * np.exp(-(((x - y * 0.7 - 180) / 40) ** 2)) * np.exp(-(((y - 600) / 260) ** 2))
    pixels = (pixels + cloud + filament).astype(np.float32)
    path = directory / "nebula.fits.fz"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.CompImageHDU(pixels, frame_header(spec), compression_type="RICE_1", name="SCI"),
        ]
    ).writeto(path, overwrite=True)
    return path


def panel(path: Path, query: str) -> Image.Image:
    display = DisplayOptions.from_mapping(dict(parse_qsl(query)))
    result = fast.render([path], width=SIZE, height=SIZE, font_path=FONT_PATH, display=display)
    return result.image


def sheet(path: Path, queries: list[str]) -> Image.Image:
    font = ImageFont.truetype(str(FONT_PATH), 11)
    width = len(queries) * SIZE + (len(queries) - 1) * GAP
    canvas = Image.new("RGB", (width, SIZE + CAPTION), "white")
    draw = ImageDraw.Draw(canvas)
    for index, query in enumerate(queries):
        left = index * (SIZE + GAP)
        canvas.paste(panel(path, query), (left, 0))
        words = query.split("&") if query else ["(default: fits2image)"]
        first = "&".join(words[:2])
        draw.text((left + 2, SIZE + 4), first, fill="black", font=font)
        if len(words) > 2:
            draw.text((left + 2, SIZE + 19), "&" + "&".join(words[2:]), fill="black", font=font)
    return canvas


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        frame = nebula_frame(Path(tmp))
        for name, queries in SHEETS.items():
            sheet(frame, queries).save(OUT / name, optimize=True)
            print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
