"""The FITS frames the end-to-end tests serve, generated once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from thumbservice.adapters.archive.dev.frames import (
    FrameSpec,
    frame_header,
    frame_record,
    render_pixels,
    write_frame,
)

OWNER = "Token sample-owner-token"
PRIVATE_PROPOSAL = "LCO2026B-999"


@dataclass(frozen=True)
class FrameSet:
    directory: Path
    records: dict[str, dict[str, Any]]  # name -> record (url filled in by the stub)
    paths: dict[str, Path]


def build_test_frames(directory: Path) -> FrameSet:
    specs: dict[str, tuple[int, FrameSpec, dict[str, Any]]] = {
        "public": (101, FrameSpec("ogg1m001-fa16-20190321-0101-e91", width=800, height=600), {}),
        "private": (
            102,
            FrameSpec(
                "ogg1m001-fa16-20260901-0042-e91",
                width=512,
                height=512,
                proposal_id=PRIVATE_PROPOSAL,
                request_id=900,
            ),
            {"public_date": "2099-01-01T00:00:00Z"},
        ),
        "raw": (
            103,
            FrameSpec(
                "ogg1m001-fa16-20190321-0103-e00",
                width=512,
                height=512,
                compressed=False,
                reduction_level=0,
                obstype="BIAS",
                request_id=901,
            ),
            {},
        ),
        "spectrum": (
            104,
            FrameSpec(
                "ogg2m001-en06-20190321-0010-e91",
                width=512,
                height=128,
                obstype="SPECTRUM",
                request_id=902,
            ),
            {},
        ),
        "red": (201, FrameSpec("ogg1m001-fa16-20190322-0201-e91", width=512, height=512,
                               filter="rp", field_seed=7, noise_seed=1, request_id=2000), {}),
        "visual": (202, FrameSpec("ogg1m001-fa16-20190322-0202-e91", width=512, height=512,
                                  filter="V", field_seed=7, noise_seed=2, offset=(12, -7),
                                  rotation_deg=0.4, request_id=2000), {}),
        "blue": (203, FrameSpec("ogg1m001-fa16-20190322-0203-e91", width=512, height=512,
                                filter="B", field_seed=7, noise_seed=3, offset=(-9, 5),
                                rotation_deg=-0.3, request_id=2000), {}),
    }  # fmt: skip
    records: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    for name, (frame_id, spec, overrides) in specs.items():
        paths[name] = write_frame(spec, directory)
        records[name] = frame_record(spec, frame_id, url="", **overrides)

    corrupt = directory / "ogg1m001-fa16-20190321-0105-e91.fits.fz"
    corrupt.write_bytes(b"SIMPLE  = this is not a FITS file" * 100)
    paths["corrupt"] = corrupt
    records["corrupt"] = {
        **records["public"],
        "id": 105,
        "basename": "ogg1m001-fa16-20190321-0105-e91",
        "filename": corrupt.name,
    }
    bundle = directory / "en06-20190321-0011-e00.tar.gz"
    bundle.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    paths["bundle"] = bundle
    records["bundle"] = {
        **records["spectrum"],
        "id": 106,
        "basename": "en06-20190321-0011-e00",
        "filename": bundle.name,
    }
    for name, frame_id, spec, write in LAYOUTS:
        paths[name] = write(spec, directory)
        records[name] = frame_record(spec, frame_id, url="", filename=paths[name].name)
    return FrameSet(directory, records, paths)


def _raw_counts(spec: FrameSpec) -> np.ndarray:
    pixels, _ = render_pixels(spec)
    return np.clip(np.rint(pixels + 600.0), 0, 65535).astype(np.uint16)


def write_naxis3(spec: FrameSpec, directory: Path) -> Path:
    """A raw frame as older Sinistro raw frames are stored: NAXIS = 3, NAXIS3 = 1, RICE."""
    data = _raw_counts(spec)[None]
    path = directory / f"{spec.basename}.fits.fz"
    hdu = fits.CompImageHDU(data, frame_header(spec), compression_type="RICE_1", name="SCI")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def write_cube(spec: FrameSpec, directory: Path) -> Path:
    """A plain cube of three planes: the field, then the field turned over twice."""
    first = _raw_counts(spec)
    data = np.stack([first, first[::-1, ::-1], first[::-1, ::-1]])
    path = directory / f"{spec.basename}.fits"
    fits.PrimaryHDU(data, frame_header(spec)).writeto(path, overwrite=True)
    return path


def write_strip(spec: FrameSpec, directory: Path) -> Path:
    """A plain float32 strip (a guide camera's 765x1 stub)."""
    pixels, _ = render_pixels(spec)
    path = directory / f"{spec.basename}.fits"
    fits.PrimaryHDU(pixels.astype(np.float32), frame_header(spec)).writeto(path, overwrite=True)
    return path


def write_table(spec: FrameSpec, directory: Path) -> Path:
    """A catalogue: a primary without data and a table, no image."""
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0, 2.0])])
    path = directory / f"{spec.basename}.fits"
    fits.HDUList([fits.PrimaryHDU(header=frame_header(spec)), table]).writeto(path, overwrite=True)
    return path


LAYOUTS = [
    ("naxis3", 107, FrameSpec("ogg1m001-fa16-20190321-0107-e00", width=520, height=512,
                              request_id=903, reduction_level=0, noise_seed=17), write_naxis3),
    ("cube", 108, FrameSpec("ogg1m001-fa16-20190321-0108-e00", width=320, height=256,
                            request_id=904, reduction_level=0, noise_seed=18), write_cube),
    ("strip", 109, FrameSpec("ogg1m001-fa16-20190321-0109-e00", width=765, height=1,
                             request_id=905, reduction_level=0, obstype="GUIDE", stars=3),
     write_strip),
    ("table", 110, FrameSpec("ogg1m001-fa16-20190321-0110-e91", width=8, height=8,
                             request_id=906, reduction_level=91), write_table),
]  # fmt: skip
"""Frames of other layouts: (name, id, spec, writer)."""
