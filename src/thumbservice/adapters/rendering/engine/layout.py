"""Which image of a FITS file is drawn, which of its planes, and which header cards matter.

**The image.** fits2image draws the first HDU holding a non-empty 2-D image (for a Sinistro
file, an empty primary and four quadrant extensions, the first quadrant), and refuses any other
file. The archive also holds images with more axes: older raw Sinistro frames are stored as
`NAXIS = 3` with `NAXIS3 = 1`, and a data cube has planes along its third (and fourth) axis.
`find_image_hdu` keeps fits2image's choice wherever fits2image has one, so every frame it draws
is drawn from the same HDU; only when a file holds no 2-D image does it take the first non-empty
image of three or four axes. Of that image the first plane is drawn (`plane_index`): for
`NAXIS3 = 1` (or `NAXIS3 = NAXIS4 = 1`) that is the whole image, for a true cube its first
plane. Its WCS is that of the first two axes (`WCS(header, naxis=2)`, and the CD matrix the
orientation reads).

**The header.** fits2image reads a header merged from the primary's and the data HDU's, the
latter's cards winning. Building it (a copy of the primary's cards, then `Header.update` card by
card) took 12 ms on a real 235-card header, longer than reading the pixels of a small frame.
The renderer reads a few of those cards: the orientation (`OBSTYPE`, the CD matrix), NAXIS1 and
NAXIS2 (the zscale sample stride) and, for color alignment, the celestial WCS. `renderer_header`
gathers only those, by keyword, with the same precedence (`RENDERER_KEYWORDS` says which); the
data's own BZERO, BSCALE, BLANK and compression cards are read by astropy and `tiles` from the
data HDU itself.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

MAX_AXES = 4
"""Images of up to this many axes are drawn (their first plane, beyond two axes)."""

RENDERER_KEYWORDS = re.compile(
    r"""^(?:
        OBSTYPE | BITPIX | NAXIS\d* | BZERO | BSCALE | BLANK
      | WCSAXES[A-Z]? | WCSNAME[A-Z]?
      | (?:CRPIX|CRVAL|CDELT|CTYPE|CUNIT|CROTA|CRDER|CSYER|CNAME)\d+[A-Z]?
      | (?:CD|PC|PV|PS)\d+_\d+[A-Z]?
      | (?:LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|RESTFRQ|RESTFREQ|RESTWAV|SPECSYS
           |SSYSOBS|SSYSSRC|VELOSYS|ZSOURCE|VELANGL)[A-Z]?
      | EPOCH | MJD-?OBS | MJD-?AVG | MJDREF[IF]? | DATE-OBS | DATE-AVG | DATEREF
      | TIMESYS | TREFPOS | OBSGEO-[XYZBLH]
      | (?:A|B|AP|BP)_(?:ORDER|DMAX|\d+_\d+)
      | (?:DP|DQ)\d+(?:\..*)?
    )$""",
    re.VERBOSE,
)
"""The cards the renderer reads: the orientation, the image's axes and scaling, and every card
astropy's WCS reads for a celestial WCS with SIP or TPV distortions (lookup-table distortions
need the file's other HDUs, which astropy does not get here nor from fits2image's header)."""


def _is_image(hdu: Any) -> bool:
    return bool(getattr(hdu, "is_image", False)) or isinstance(hdu, fits.CompImageHDU)


def find_image_hdu(hdul: fits.HDUList) -> Any:
    """The HDU whose first plane is drawn, or None when the file holds no image.

    fits2image's `_find_data_hdu` first: the first HDU holding a non-empty 2-D image. Failing
    that, the first non-empty image of three or four axes.
    """
    for hdu in hdul:
        shape = getattr(hdu, "shape", ())
        if len(shape) == 2 and all(shape):
            return hdu
    for hdu in hdul:
        shape = getattr(hdu, "shape", ())
        if _is_image(hdu) and 2 < len(shape) <= MAX_AXES and all(shape):
            return hdu
    return None


def plane_index(hdu: Any) -> tuple[int, ...]:
    """The index of the plane drawn, before the row and column axes: () for a 2-D image,
    (0,) for NAXIS = 3, (0, 0) for NAXIS = 4."""
    return (0,) * (len(hdu.shape) - 2)


def plane_count(hdu: Any) -> int:
    """How many planes the image holds (1 for a 2-D image and for degenerate extra axes)."""
    return int(np.prod(hdu.shape[:-2], dtype=np.int64)) if len(hdu.shape) > 2 else 1


def image_shape(path: Path | str) -> tuple[int, int]:
    """(height, width) of the plane that would be drawn, read from the headers only."""
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        hdu = find_image_hdu(hdul)
        if hdu is None:
            raise LookupError("no image")
        height, width = hdu.shape[-2:]
        return int(height), int(width)


def merged_header(hdul: fits.HDUList, hdu: Any) -> fits.Header:
    """The data HDU's header completed from the primary's, as fits2image's header reads."""
    primary = hdul[0]
    if hdu is primary:
        return hdu.header
    merged = primary.header.copy()
    merged.update(hdu.header)
    return merged


def renderer_header(hdul: fits.HDUList, hdu: Any) -> fits.Header:
    """The cards of `merged_header` the renderer reads (`RENDERER_KEYWORDS`), and only those.

    The data HDU's cards win over the primary's, as in the merged header. An image in the
    primary HDU has nothing to merge: its own header, which astropy has already read, is
    handed over as it is, as `merged_header` does.
    """
    primary = hdul[0]
    if hdu is primary:
        return hdu.header
    chosen: dict[str, fits.Card] = {}
    match = RENDERER_KEYWORDS.match
    for header in (primary.header, hdu.header):
        for card in header._cards:
            keyword = card.keyword
            if match(keyword):
                chosen[keyword] = card
    return fits.Header([copy.copy(card) for card in chosen.values()])


STRUCTURE = re.compile(
    r"^(?:SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|GROUPS|BZERO|BSCALE|BLANK"
    r"|CHECKSUM|DATASUM|EXTNAME|EXTVER|TFIELDS|THEAP|Z.*|T(?:TYPE|FORM|UNIT|DIM)\d+)$"
)
"""Cards that describe how a file stores its image, not the image: not copied to a plane."""


def _beyond_two_axes(keyword: str) -> bool:
    """Whether a WCS card belongs to the third or a later axis (CTYPE3, PC1_3, CD3_3, ...)."""
    found = re.match(
        r"^(?:(?:CRPIX|CRVAL|CDELT|CTYPE|CUNIT|CROTA|CRDER|CSYER|CNAME)(\d+)"
        r"|(?:CD|PC|PV|PS)(\d+)_(\d+))[A-Z]?$",
        keyword,
    )
    if found is None:
        return keyword.startswith("WCSAXES")
    axes = [int(group) for group in found.groups()[:2] if group is not None]
    if found.group(2) is not None and not keyword.startswith(("PV", "PS")):
        axes.append(int(found.group(3)))
    return any(axis > 2 for axis in axes)


def write_plane(path: Path, target: Path) -> bool:
    """Write the plane drawn from `path` as a plain 2-D FITS file at `target`, when `path` is
    an image of more than two axes. False (and nothing written) for a 2-D image or no image.

    The pixels are the values astropy reads (BSCALE, BZERO and blanks applied), stored so that
    they read back the same; the header is the merged header without the cards of how the
    file stored its data and of the axes beyond the first two.
    """
    with fits.open(path, memmap=None, lazy_load_hdus=True) as hdul:
        hdu = find_image_hdu(hdul)
        if hdu is None or len(hdu.shape) == 2:
            return False
        pixels = np.asarray(hdu.section[plane_index(hdu)])
        header = fits.Header(
            [
                copy.copy(card)
                for card in merged_header(hdul, hdu).cards
                if not STRUCTURE.match(card.keyword) and not _beyond_two_axes(card.keyword)
            ]
        )
    # Cards astropy would refuse to write (a non-standard card of a real header) are fixed
    # where they can be and kept as they are otherwise: fits2image reads them back the same.
    fits.PrimaryHDU(pixels, header).writeto(target, output_verify="silentfix+ignore")
    return True
