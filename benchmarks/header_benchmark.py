"""The frame's header: the merged 235-card header against only the cards the renderer reads.

Run from the repository root:

    .venv/bin/python benchmarks/header_benchmark.py            # 201 rounds, renders 15
    .venv/bin/python benchmarks/header_benchmark.py --rounds 501 --renders 31

fits2image reads a header merged from the primary's and the data HDU's (`layout.
merged_header`: a copy of the primary's cards, then `Header.update` card by card). The fast
renderer now gathers only the cards it reads (`layout.renderer_header`). Both are measured in
one process, in alternating rounds, on three files carrying an LCO-like header of 235 cards
(`lco_header`: the keywords of a Las Cumbres Observatory frame, values of their kinds, comments):

* **e91**: BANZAI's layout, an empty primary of 9 cards and a RICE-compressed SCI extension
  holding the whole header;
* **Sinistro**: the whole header on the primary, four quadrants of 17 cards each;
* **plain**: the whole header on a plain primary image (nothing to merge: both hand over the
  primary's own header, which astropy has already read; a check that nothing got slower).

For each: the header alone (the HDU list open, the data HDU found), `FrameFile(path)` opened
and closed (before: with the merged header, as this code read it until now), and for the e91
file a whole render at 200 px of a 2048x2048 frame. The figures are medians of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from thumbservice.adapters.archive.dev.frames import (  # noqa: E402
    FrameSpec,
    frame_header,
    render_pixels,
)
from thumbservice.adapters.rendering.engine import fast, framefile, layout  # noqa: E402
from thumbservice.adapters.rendering.engine.labels import FONT_PATH  # noqa: E402

CARDS = 235

LCO_KEYWORDS = [
    "ORIGIN",
    "SITEID",
    "SITE",
    "ENCID",
    "ENCLOSUR",
    "TELID",
    "TELESCOP",
    "TELESCOP2",
    "LATITUDE",
    "LONGITUD",
    "HEIGHT",
    "OBSGEO-X",
    "OBSGEO-Y",
    "OBSGEO-Z",
    "OBSTYPE",
    "FRAMENUM",
    "MOLTYPE",
    "MOLNUM",
    "MOLUID",
    "EXPTIME",
    "REQTIME",
    "DATE",
    "DATE-OBS",
    "DAY-OBS",
    "UTSTART",
    "UTSTOP",
    "MJD-OBS",
    "EXPTIME",
    "INSTRUME",
    "INSSTATE",
    "ICSVER",
    "CONFMODE",
    "CONFNAME",
    "DETECTOR",
    "DETSIZE",
    "AMPNAME",
    "CCDSEC",
    "CCDSUM",
    "BIASSEC",
    "DATASEC",
    "TRIMSEC",
    "ROTATOR",
    "ROTTYPE",
    "ROTMODE",
    "ROTANGLE",
    "ROTSKYPA",
    "ROTEROR",
    "FILTER",
    "FILTER1",
    "FILTERI1",
    "FILTER2",
    "FILTERI2",
    "FILTER3",
    "FILTERI3",
    "FWID",
    "FILTID",
    "OPTMODE",
    "SINGLE",
    "BLKUID",
    "BLKTYPE",
    "BLKEFSTM",
    "BLKSDATE",
    "BLKEDATE",
    "BLKNOMEX",
    "BLKMNPH",
    "BLKMNDST",
    "BLKSEECO",
    "BLKTRNCO",
    "BLKAIRCO",
    "SCHEDNAM",
    "TRACKNUM",
    "REQNUM",
    "PROPID",
    "GROUPID",
    "OBJECT",
    "SRCTYPE",
    "PM-RA",
    "PM-DEC",
    "PARALLAX",
    "RADVEL",
    "RATRACK",
    "DECTRACK",
    "TRACFRAC",
    "TELSTATE",
    "ENGSTATE",
    "TCSSTATE",
    "TCSVER",
    "TPNTMODL",
    "UT1-UTC",
    "POLARMOX",
    "POLARMOY",
    "EOPSRC",
    "ROLLERDR",
    "ROLLERND",
    "AZDMD",
    "AZIMUTH",
    "AZSTAT",
    "ALTDMD",
    "ALTITUDE",
    "ALTSTAT",
    "AIRMASS",
    "AMSTART",
    "AMEND",
    "ENC1STAT",
    "ENC2STAT",
    "ENCAZ",
    "WINDSCR",
    "WMSSTATE",
    "WMSHUMID",
    "WMSTEMP",
    "WMSPRES",
    "WINDSPEE",
    "WINDDIR",
    "WMSRAIN",
    "WMSMOIST",
    "WMSDEWPT",
    "WMSCLOUD",
    "WMSSKYBR",
    "SKYMAG",
    "TUBETEMP",
    "M1COVER",
    "M1HRTMN",
    "FOCOBOFF",
    "FOCTELZP",
    "FOCINOFF",
    "FOCTOFF",
    "FOCZOFF",
    "FOCAFOFF",
    "FOCOBOFF",
    "FOCFLOFF",
    "FOCSTAT",
    "M2PITCH",
    "M2ROLL",
    "AUXROLL",
    "AUXPITCH",
    "CONFIG",
    "PIXSCALE",
    "CCDSTEMP",
    "CCDATEMP",
    "CCDSESIG",
    "CCDXPIXE",
    "CCDYPIXE",
    "ISSTEMP",
    "GAIN",
    "RDNOISE",
    "DARKCURR",
    "SATURATE",
    "MAXLIN",
    "RDSPEED",
    "CHIPID",
    "CCDPROC",
    "CRPIX1",
    "CRPIX2",
    "CRVAL1",
    "CRVAL2",
    "CTYPE1",
    "CTYPE2",
    "CUNIT1",
    "CUNIT2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "WCSERR",
    "RADESYS",
    "EQUINOX",
    "PCRECIPE",
    "PPRECIPE",
    "RLEVEL",
    "PIPEVER",
    "L1IDBIAS",
    "L1IDDARK",
    "L1IDFLAT",
    "L1IDSHUT",
    "L1IDMASK",
    "L1STATBI",
    "L1STATDA",
    "L1STATFL",
    "L1STATOV",
    "L1STATTR",
    "L1MEAN",
    "L1MEDIAN",
    "L1SIGMA",
    "L1FWHM",
    "L1FWTM",
    "L1ELLIP",
    "L1ELLIPA",
    "L1PUBDAT",
    "OVERSCAN",
    "OVERSCN1",
    "SATFRAC",
    "DQFRAC",
    "SKYLEVEL",
]


def lco_header(spec: FrameSpec) -> fits.Header:
    """A header of `CARDS` cards: the frame's own (its WCS), then LCO's keywords."""
    header = frame_header(spec)
    rng = np.random.default_rng(0)
    for index, keyword in enumerate(dict.fromkeys(LCO_KEYWORDS)):
        if len(header) >= CARDS:
            break
        if keyword in header:
            continue
        kind = index % 3
        value: object = (
            f"value-{index}" if kind == 0 else float(rng.normal(100, 10)) if kind == 1 else index
        )
        header[keyword] = (value, f"[unit] what {keyword.lower()} records")
    index = 0
    while len(header) < CARDS:
        header[f"EXTRA{index:03d}"] = (float(index), "one more card")
        index += 1
    return header


def write_files(directory: Path, side: int) -> dict[str, Path]:
    spec = FrameSpec("ogg1m001-fa16-20190321-0101-e91", width=side, height=side)
    pixels, _ = render_pixels(spec)
    header = lco_header(spec)
    e91 = directory / "e91.fits.fz"
    primary = fits.PrimaryHDU()
    for key in ("OBJECT", "FILTER", "EXPTIME", "DATE-OBS", "OBSTYPE"):
        primary.header[key] = header[key]
    sci = fits.CompImageHDU(pixels, header, compression_type="RICE_1", dither_seed=1, name="SCI")
    fits.HDUList([primary, sci]).writeto(e91)
    small = pixels[:128, :128]
    quadrants = []
    for number in range(1, 5):
        quadrant = fits.ImageHDU(np.rint(small + 600).astype(np.uint16), name=f"SCI{number}")
        for extra in range(17 - len(quadrant.header)):
            quadrant.header[f"QKEY{extra}"] = extra
        quadrants.append(quadrant)
    sinistro = directory / "sinistro.fits"
    fits.HDUList([fits.PrimaryHDU(header=header), *quadrants]).writeto(sinistro)
    plain = directory / "plain.fits"
    fits.PrimaryHDU(small.astype(np.float32), header).writeto(plain)
    return {"e91": e91, "Sinistro": sinistro, "plain": plain}


def header_time(path: Path, build: Callable) -> float:
    with fits.open(path, memmap=None, lazy_load_hdus=True) as hdul:
        hdu = layout.find_image_hdu(hdul)
        hdu.header  # noqa: B018 - astropy's own header, built by the open in both cases
        start = time.perf_counter()
        build(hdul, hdu)
        return time.perf_counter() - start


def open_time(path: Path, build: Callable) -> float:
    framefile.renderer_header = build
    try:
        start = time.perf_counter()
        with framefile.FrameFile(path):
            pass
        return time.perf_counter() - start
    finally:
        framefile.renderer_header = layout.renderer_header


def render_time(path: Path, build: Callable) -> float:
    framefile.renderer_header = build
    try:
        start = time.perf_counter()
        fast.render([path], width=200, height=200, font_path=FONT_PATH)
        return time.perf_counter() - start
    finally:
        framefile.renderer_header = layout.renderer_header


def compare(name: str, rounds: int, measure: Callable[[Callable], float]) -> None:
    before: list[float] = []
    after: list[float] = []
    for _ in range(rounds):
        before.append(measure(layout.merged_header))
        after.append(measure(layout.renderer_header))
    b, a = statistics.median(before), statistics.median(after)
    print(f"{name:44} {1e3 * b:9.2f} {1e3 * a:9.2f} {a / b:7.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=201)
    parser.add_argument("--renders", type=int, default=15)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="headers-") as scratch:
        files = write_files(Path(scratch), 2048)
        for name, path in files.items():
            with fits.open(path) as hdul:
                hdu = layout.find_image_hdu(hdul)
                merged = layout.merged_header(hdul, hdu)
                ours = layout.renderer_header(hdul, hdu)
                print(f"{name}: merged header {len(merged)} cards, the renderer's {len(ours)}")
        print(f"\nmedians, ms; {args.rounds} alternating rounds ({args.renders} for renders)\n")
        print(f"{'measure':44} {'merged':>9} {'renderer':>9} {'ratio':>8}")
        print("-" * 73)
        for name, path in files.items():
            compare(f"{name}: the header", args.rounds, lambda b, p=path: header_time(p, b))
        for name, path in files.items():
            compare(f"{name}: FrameFile opened and closed", args.rounds,
                    lambda b, p=path: open_time(p, b))  # fmt: skip
        compare("e91 2048x2048: render at 200 px", args.renders,
                lambda b: render_time(files["e91"], b))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
