"""The FITS frames the end-to-end tests serve, generated once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_record, write_frame

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
    return FrameSet(directory, records, paths)
