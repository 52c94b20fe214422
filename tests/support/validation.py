"""The IIIF validator's test image as FITS frames the stand-in archive serves.

The image (1000x1000, a 10x10 grid of flat colour squares; CC0, shipped in PyPI
`iiif-validator-ng` 0.1.0 as `iiif_validator/validation_image.png`, kept here as
`data/iiif-validation-image.png`) is split into its three colour planes, written as the red,
visual and blue frames of one observing request. FITS row 0 is drawn at the bottom, so each
plane is stored flipped vertically, with one north-up WCS (east left): fits2image's
orientation then draws it the right way up, and the validator goes through the real FITS path.
A linear stretch with cuts 0 and 255 gives back the image's own colours.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from PIL import Image

from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_header, frame_record

IMAGE = Path(__file__).with_name("data") / "iiif-validation-image.png"
REQUEST_ID = 3000
FRAMES = {"red": (301, "rp", 0), "visual": (302, "V", 1), "blue": (303, "B", 2)}
IDENTIFIER = "iiif-validation-0301-e91;color=true;max_cut=255;min_cut=0;stretch=linear"
"""The validator's identifier: the red frame's basename (its '-' tested escaped as %2D) and
the display options that draw the image's own colours."""


def validation_image() -> np.ndarray:
    return np.asarray(Image.open(IMAGE).convert("RGB"))


def build_validation_frames(directory: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """name -> (archive record, file) for the red, visual and blue frames."""
    directory.mkdir(parents=True, exist_ok=True)
    rgb = validation_image()
    made: dict[str, tuple[dict[str, Any], Path]] = {}
    for name, (frame_id, element, plane) in FRAMES.items():
        spec = FrameSpec(
            f"iiif-validation-{frame_id:04d}-e91",
            width=rgb.shape[1],
            height=rgb.shape[0],
            filter=element,
            request_id=REQUEST_ID,
            compressed=False,
            with_wcs=False,
        )
        header = frame_header(spec)
        # North up, east left: RA grows to the left, Dec upwards, as on the sky.
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
        header["CRPIX1"], header["CRPIX2"] = 500.5, 500.5
        header["CRVAL1"], header["CRVAL2"] = 150.0, 2.0
        header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
        header["CD1_1"], header["CD1_2"] = -1.0e-4, 0.0
        header["CD2_1"], header["CD2_2"] = 0.0, 1.0e-4
        pixels = np.flipud(rgb[..., plane]).astype(np.float32)
        path = directory / spec.filename
        fits.HDUList([fits.PrimaryHDU(data=pixels, header=header)]).writeto(path, overwrite=True)
        made[name] = (frame_record(replace(spec), frame_id, url=""), path)
    return made
