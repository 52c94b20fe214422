"""What a renderer hands back to the worker that called it."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class RenderResult:
    """The final image, label drawn, and what became of the color alignment.

    `aligned` is True when the color frames were put on the red frame's grid, False when
    that fell back (`note` says why) and None for a black-and-white image or when alignment
    was not asked for. Encoding is the caller's: the same image can become a JPEG, a PNG or
    a WebP.
    """

    image: Image.Image
    aligned: bool | None
    note: str
