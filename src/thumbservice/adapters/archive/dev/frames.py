"""Realistic sample frames: star fields with a TAN WCS, sky noise and RICE compression.

Used by the embedded sample archive (`make run`), the tests and the benchmarks. Stars are placed
on the sky, then projected through each frame's own WCS, so frames of one field taken with
different pointings show the same stars at the pixels their headers predict. Everything is
seeded: the same spec always gives the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

PIXEL_SCALE_DEG = 0.389 / 3600  # Sinistro-like, 0.389 arcsec per pixel
FIELD_CENTRE = (83.8221, -5.3911)  # RA, Dec in degrees (M42)


@dataclass(frozen=True)
class FrameSpec:
    """One frame to generate. `offset` moves the pointing by whole or fractional pixels."""

    basename: str
    width: int = 1024
    height: int = 1024
    filter: str = "rp"
    field_seed: int = 42
    noise_seed: int = 0
    offset: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    stars: int = 400
    with_wcs: bool = True
    compressed: bool = True
    reduction_level: int = 91
    obstype: str = "EXPOSE"
    object_name: str = "M42"
    proposal_id: str = "LCOEPO2018B-002"
    request_id: int = 1756835
    exposure_time: float = 60.0
    extra_header: dict[str, object] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.basename + (".fits.fz" if self.compressed else ".fits")


def frame_wcs(spec: FrameSpec) -> WCS:
    """The TAN WCS of a frame: the field centre near the middle, shifted by `offset` pixels."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(FIELD_CENTRE)
    # FITS pixels are 1-based; the field centre lands at the middle plus the pointing offset.
    wcs.wcs.crpix = [
        (spec.width + 1) / 2 + spec.offset[0],
        (spec.height + 1) / 2 + spec.offset[1],
    ]
    theta = math.radians(spec.rotation_deg)
    s = PIXEL_SCALE_DEG
    # East left, north up: RA decreases with x.
    wcs.wcs.cd = [
        [-s * math.cos(theta), s * math.sin(theta)],
        [s * math.sin(theta), s * math.cos(theta)],
    ]
    return wcs


# How much brighter a star of color +1 (red) or -1 (blue) is through each filter.
COLOR_RESPONSE = {"B": -0.6, "gp": -0.3, "V": 0.0, "rp": 0.4, "R": 0.4, "ip": 0.6, "zs": 0.7}


def star_catalogue(field_seed: int, count: int, radius_deg: float) -> np.ndarray:
    """Stars around the field centre: columns RA, Dec (degrees), peak flux and color (-1..1)."""
    rng = np.random.default_rng(field_seed)
    ra0, dec0 = FIELD_CENTRE
    dra = rng.uniform(-radius_deg, radius_deg, count) / math.cos(math.radians(dec0))
    ddec = rng.uniform(-radius_deg, radius_deg, count)
    # A steep luminosity function: a few bright stars, many faint ones.
    flux = 200.0 * (1.0 + rng.pareto(1.5, count))
    color = rng.uniform(-1.0, 1.0, count)
    return np.column_stack([ra0 + dra, dec0 + ddec, np.minimum(flux, 60000.0), color])


def render_pixels(spec: FrameSpec) -> tuple[np.ndarray, np.ndarray]:
    """The frame's float32 pixels and the pixel positions (x, y, 0-based) of its stars."""
    wcs = frame_wcs(spec)
    half_diagonal = math.hypot(spec.width, spec.height) / 2 * PIXEL_SCALE_DEG
    density = spec.stars / (1024 * 1024)
    count = max(1, int(density * (2 * half_diagonal / PIXEL_SCALE_DEG) ** 2))
    stars = star_catalogue(spec.field_seed, count, half_diagonal)
    x, y = wcs.all_world2pix(stars[:, 0], stars[:, 1], 0)
    rng = np.random.default_rng(spec.noise_seed)
    image = rng.normal(400.0, 12.0, (spec.height, spec.width)).astype(np.float32)
    sigma = 2.2
    radius = 9
    inside = (x > -radius) & (x < spec.width + radius) & (y > -radius) & (y < spec.height + radius)
    response = COLOR_RESPONSE.get(spec.filter, 0.0)
    fluxes = stars[inside, 2] * (1.0 + response * stars[inside, 3])
    for sx, sy, flux in zip(x[inside], y[inside], fluxes, strict=True):
        x0, x1 = max(int(sx) - radius, 0), min(int(sx) + radius + 1, spec.width)
        y0, y1 = max(int(sy) - radius, 0), min(int(sy) + radius + 1, spec.height)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-0.5 * ((np.arange(x0, x1) - sx) / sigma) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1) - sy) / sigma) ** 2)
        image[y0:y1, x0:x1] += (flux * np.outer(gy, gx)).astype(np.float32)
    positions = np.column_stack([x[inside], y[inside]])
    return image, positions


def frame_header(spec: FrameSpec) -> fits.Header:
    header = fits.Header()
    header["OBJECT"] = spec.object_name
    header["FILTER"] = spec.filter
    header["EXPTIME"] = spec.exposure_time
    header["DATE-OBS"] = "2019-03-21T10:11:12.345"
    header["MJD-OBS"] = 58563.424448
    header["OBSTYPE"] = spec.obstype
    header["PROPID"] = spec.proposal_id
    header["REQNUM"] = spec.request_id
    header["RLEVEL"] = spec.reduction_level
    header["SATURATE"] = 65000.0
    header["INSTRUME"] = "fa16"
    header["SITEID"] = "ogg"
    header["TELID"] = "1m0a"
    header["L1PUBDAT"] = "2020-03-21T10:11:12.345"
    for key, value in spec.extra_header.items():
        header[key] = value
    if spec.with_wcs:
        # Written as CD cards, as BANZAI writes them (astropy would write PC and CDELT).
        wcs = frame_wcs(spec).wcs
        header["CTYPE1"], header["CTYPE2"] = wcs.ctype[0], wcs.ctype[1]
        header["CRPIX1"], header["CRPIX2"] = float(wcs.crpix[0]), float(wcs.crpix[1])
        header["CRVAL1"], header["CRVAL2"] = float(wcs.crval[0]), float(wcs.crval[1])
        header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
        for i in range(2):
            for j in range(2):
                header[f"CD{i + 1}_{j + 1}"] = float(wcs.cd[i][j])
    return header


def write_frame(spec: FrameSpec, directory: Path) -> Path:
    """Write the frame as the archive stores it and return its path.

    Compressed frames follow BANZAI's layout: an empty primary HDU, the image as a RICE
    `CompImageHDU` named SCI, then a CAT table of the sources. Plain frames keep the image in
    the primary HDU.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pixels, positions = render_pixels(spec)
    header = frame_header(spec)
    path = directory / spec.filename
    if spec.compressed:
        primary = fits.PrimaryHDU()
        for key in ("OBJECT", "FILTER", "EXPTIME", "DATE-OBS", "OBSTYPE", "PROPID", "REQNUM"):
            primary.header[key] = header[key]
        sci = fits.CompImageHDU(
            data=pixels,
            header=header,
            compression_type="RICE_1",
            quantize_level=16.0,
            dither_seed=1,  # a fixed seed keeps the file byte-for-byte reproducible
            name="SCI",
        )
        catalogue = fits.BinTableHDU.from_columns(
            [
                fits.Column(name="x", format="E", array=positions[:, 0] + 1),
                fits.Column(name="y", format="E", array=positions[:, 1] + 1),
            ],
            name="CAT",
        )
        hdul = fits.HDUList([primary, sci, catalogue])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(data=pixels, header=header)])
    tmp = path.with_name(path.name + ".part")
    hdul.writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


def frame_record(
    spec: FrameSpec, frame_id: int, url: str, **overrides: object
) -> dict[str, object]:
    """An archive frame record describing the generated frame."""
    record: dict[str, object] = {
        "id": frame_id,
        "basename": spec.basename,
        "filename": spec.filename,
        "url": url,
        "proposal_id": spec.proposal_id,
        "request_id": spec.request_id,
        "observation_id": 45239802,
        "configuration_type": spec.obstype,
        "primary_optical_element": spec.filter,
        "reduction_level": spec.reduction_level,
        "observation_date": "2019-03-21T10:11:12.345000Z",
        "observation_day": "2019-03-21",
        "public_date": "2020-03-21T10:11:12.345000Z",
        "instrument_id": "fa16",
        "site_id": "ogg",
        "telescope_id": "1m0a",
        "exposure_time": spec.exposure_time,
        "target_name": spec.object_name,
        "related_frames": [],
    }
    record.update(overrides)
    return record
