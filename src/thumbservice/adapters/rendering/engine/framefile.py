"""The image fits2image would render, read a band of rows at a time.

fits2image takes the first HDU holding a non-empty 2-D image (for a Sinistro file, an empty
primary and four quadrant extensions, the first quadrant) with the primary header merged in,
and reads all of its pixels at once. `FrameFile` picks the same HDU (`layout`: and, in a file
without a 2-D image, the first plane of an image of three or four axes) and the cards of that
header the renderer reads, but reads rows through astropy's sections: a RICE-compressed image
decompresses only the tiles of those rows. The file is memory-mapped, as astropy does by
default (reading each tile with a system call instead cost 26% more CPU time), and `release`
hands the mapped pages back after each band, so that neither the compressed nor a plain
file's bytes pile up in the process as it reads.

astropy 8 looks THEAP up in the table header once per tile when it reads part of a compressed
image (a full read caches the heap instead), through its slow `Header` lookups. On a 4096x4096
frame read in 16 bands that took the CPU time from 0.34 s to 0.46 s (medians of 7; one full
read took 0.28 s but holds the whole frame). The value cannot change while the file is open,
so `FrameFile` pins it on the table it has open.

A RICE-compressed image whose tiles hold whole rows, as reduced and raw frames are, is not read
through astropy's reader at all but through `tiles.TileReader`, which calls the same C codec
without astropy's per-tile Python (on a 2048x2048 frame, 50 ms instead of 100-150 ms). It
gives the same values; what it does not know it leaves to astropy's sections, and where a
section cannot be read, astropy's full read of the image gives the rows.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from thumbservice.adapters.rendering.engine.layout import (
    find_image_hdu,
    merged_header,
    plane_count,
    plane_index,
    renderer_header,
)
from thumbservice.adapters.rendering.engine.tiles import TileReader, Unsupported
from thumbservice.domain.errors import UnreadableFrame

__all__ = ["FrameFile", "find_image_hdu", "merged_header"]

logger = logging.getLogger(__name__)

_PINNED_CLASSES: dict[type, type] = {}


def _pin_heap_offset(hdu: Any) -> None:
    """Make a compressed HDU's table answer THEAP from a stored value, when astropy allows it.

    Only a speed-up: where astropy's internals differ from what this expects, nothing changes.
    """
    table = getattr(hdu, "_bintable", None)
    if table is None or not isinstance(getattr(type(table), "_theap", None), property):
        return
    try:
        theap = table._theap
        base = type(table)
        pinned = _PINNED_CLASSES.get(base)
        if pinned is None:
            pinned = type(
                f"Pinned{base.__name__}",
                (base,),
                {"_theap": property(lambda self: self.__dict__["_pinned_theap"])},
            )
            _PINNED_CLASSES[base] = pinned
        table.__dict__["_pinned_theap"] = theap
        table.__class__ = pinned
    except Exception:  # an astropy this does not know: read at astropy's own pace
        return


class FrameFile:
    """One frame's image HDU, open for reading rows. Use it as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                # memmap=None: mapped, yet (unlike True) allowed to apply BZERO and BSCALE.
                self._hdul = fits.open(self.path, memmap=None, lazy_load_hdus=True)
        except FileNotFoundError:
            raise UnreadableFrame(f"{self.path.name} does not exist") from None
        except Exception as err:
            raise UnreadableFrame(f"{self.path.name} is not a FITS file: {err}") from None
        try:
            hdu = find_image_hdu(self._hdul)
            if hdu is None:
                raise UnreadableFrame(f"{self.path.name} holds no image, only tables or empty data")
            self._hdu = hdu
            self.header = renderer_header(self._hdul, hdu)
            height, width = hdu.shape[-2:]
            self.height, self.width = int(height), int(width)
            self.plane = plane_index(hdu)
            self.planes = plane_count(hdu)
            self._loaded: np.ndarray | None = None
            self.compressed = isinstance(hdu, fits.CompImageHDU)
            self._tiles: TileReader | None = None
            if self.compressed:
                _pin_heap_offset(hdu)
                self._tiles = TileReader.of(hdu)
            self._section = hdu.section
        except BaseException:
            self._hdul.close()
            raise

    @property
    def naxis(self) -> tuple[int, int]:
        """NAXIS1 and NAXIS2 as fits2image reads them from its merged header (the data HDU's)."""
        return int(self.header.get("NAXIS1", self.width)), int(self.header.get("NAXIS2", 0))

    @property
    def reader(self) -> str:
        """Which path gives the rows now: "tiles" (`TileReader`), "astropy" (astropy's reader
        of compressed tiles), "plain" (astropy's reader of an uncompressed image) or "full
        read" (astropy's full read, where its section of the image could not be read)."""
        if self._loaded is not None:
            return "full read"
        if self._tiles is not None:
            return "tiles"
        return "astropy" if self.compressed else "plain"

    @property
    def tile_rows(self) -> int:
        """How many rows one compressed tile holds (1 for a plain image)."""
        if not self.compressed:
            return 1
        return max(1, int(self._hdu.tile_shape[0]))

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows `start` to `stop` with BSCALE and BZERO applied, as `hdu.data[start:stop]`."""
        if self._tiles is not None:
            rows = self._tile_rows(start, stop)
            if rows is not None:
                return rows
        if self._loaded is not None:
            return self._loaded[start:stop]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            try:
                return np.asarray(self._section[(*self.plane, slice(start, stop))])
            except (MemoryError, UnreadableFrame):
                raise
            except Exception as err:
                # A layout astropy's sections do not take: its full read, once, the same values.
                logger.info("Reading %s whole: %s: %s", self.path.name, type(err).__name__, err)
                self._loaded = self._plane()
                return self._loaded[start:stop]

    def whole(self) -> np.ndarray:
        """All rows at once, as `hdu.data`: the fastest read, for frames known small."""
        if self._tiles is not None:
            rows = self._tile_rows(0, self.height)
            if rows is not None:
                return rows
        if self._loaded is not None:
            return self._loaded
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            if self.plane:
                # Beyond two axes, the plane alone: `hdu.data` would read every plane.
                return self.rows(0, self.height)
            return np.asarray(self._hdu.data)

    def _plane(self) -> np.ndarray:
        """The drawn plane by astropy's full read."""
        data = np.asarray(self._hdu.data)
        return data[self.plane] if self.plane else data

    def _tile_rows(self, start: int, stop: int) -> np.ndarray | None:
        """Rows through `TileReader`, or None (from then on) where astropy has to read them."""
        assert self._tiles is not None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                return self._tiles.rows(start, stop)
        except Unsupported:
            self._tiles = None
            return None

    def release(self) -> None:
        """Drop the file's pages from this process; they stay in the page cache.

        Arrays read from the map stay valid: a page is read back in if touched again.
        """
        mapped = getattr(getattr(self._hdul, "_file", None), "_mmap", None)
        if isinstance(mapped, mmap.mmap) and hasattr(mapped, "madvise"):
            with contextlib.suppress(OSError, ValueError):
                mapped.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        self._tiles = None
        self._hdul.close()

    def __enter__(self) -> FrameFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
