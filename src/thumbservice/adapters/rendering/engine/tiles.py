"""RICE-compressed tiles decompressed by astropy's own codec, without its per-tile overhead.

Reduced frames are RICE-compressed one row per tile: a 2048x2048 frame is 2048 tiles, a
4096x4096 one 4096. astropy's reader (`decompress_image_data_section`) runs some forty lines
of Python for each tile around the C decoder: the codec objects, the tile slices, the
settings, a `Quantize` object and a small numpy expression to dequantize. On a 2048x2048
frame that took 100-150 ms where the C decoder itself takes about 35 ms.

`TileReader` calls the same C functions (`decompress_rice_1_c`, and `unquantize_float_c` for
dithered data) in a loop that does nothing else, and dequantizes undithered data for all tiles
at once with the same float64 arithmetic as astropy's (`q * ZSCALE + ZZERO`, then float32).
Blank pixels and BSCALE/BZERO are handled as astropy handles them, the latter by the HDU's own
`_scale_data`. The values are astropy's, bit for bit (tests compare them on every kind of
compressed frame the corpus has).

It takes only what it knows: a RICE image whose tiles hold whole rows (of its first plane, for
an image of three or four axes: `layout` says why that plane is drawn), compressed bytes
in the COMPRESSED_DATA column of every tile, integer data or quantized float32. Anything else,
and an astropy whose internals differ from what this expects, is read by astropy as before:
`TileReader.of` answers None, or `rows` raises `Unsupported` for a tile it cannot take.
"""

from __future__ import annotations

import gzip
import re
from typing import Any

import numpy as np

try:  # astropy's private C codec: without it every frame is read by astropy itself
    from astropy.io.fits.hdu.compressed._compression import (
        decompress_rice_1_c,
        unquantize_float_c,
    )
except ImportError:  # pragma: no cover - an astropy without them
    decompress_rice_1_c = unquantize_float_c = None

RICE = ("RICE_1", "RICE_ONE")

DITHER_METHODS = {"NONE": 0, "NO_DITHER": -1, "SUBTRACTIVE_DITHER_1": 1, "SUBTRACTIVE_DITHER_2": 2}
"""astropy's `DITHER_METHODS`: -1 dequantizes without the C function."""

CHUNK_PIXELS = 1 << 17
"""Pixels decoded and dequantized at a time: the chunk's integers and float64 scratch stay in
the CPU's cache (0.5 and 1 MiB)."""

TFORM = re.compile(r"^(\d*)([A-Z])(.*)$")
DESCRIPTORS = {"P": ">i4", "Q": ">i8"}
SCALARS = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}

INTEGER_TYPES = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64}


class Unsupported(Exception):
    """This read is astropy's to do (a tile stored otherwise than RICE-compressed)."""


def _setting(header: Any, name: str, default: int) -> int:
    """astropy's `_get_compression_setting`: ZVALn of the ZNAMEn that is `name`."""
    for index in range(1, 1000):
        key = f"ZNAME{index}"
        if key not in header:
            break
        if str(header[key]).lower() == name.lower():
            return int(header[f"ZVAL{index}"])
    return default


def _table_columns(table: Any, header: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tile table's columns, read straight from its rows, and what a descriptor column's
    heap elements are ("B(1838)": bytes). A descriptor column comes as (n, 2): length, offset.

    The same numbers astropy's `FITS_rec` gives, without building one (2-3 ms a frame).
    """
    formats = []
    for index in range(1, int(header["TFIELDS"]) + 1):
        if f"TSCAL{index}" in header or f"TZERO{index}" in header:
            raise Unsupported("a scaled column in the tile table")
        match = TFORM.match(str(header[f"TFORM{index}"]).strip())
        if match is None or int(match[1] or 1) != 1:
            raise Unsupported("a column of another form")
        code = match[2]
        if code in DESCRIPTORS:
            kind: Any = (DESCRIPTORS[code], (2,))
        elif code in SCALARS:
            kind = SCALARS[code]
        else:
            raise Unsupported("a column of another type")
        formats.append((str(header[f"TTYPE{index}"]).strip().upper(), kind, match[3]))
    dtype = np.dtype([(name, kind) for name, kind, _ in formats])
    if dtype.itemsize != int(header["NAXIS1"]):
        raise Unsupported("the table's rows are not what its columns say")
    rows = table._get_raw_data(int(header["NAXIS2"]), dtype, table._data_offset)
    columns = {name: np.asarray(rows[name]) for name, _, _ in formats}
    return columns, {name: element for name, _, element in formats}


class TileReader:
    """Rows of a RICE-compressed image HDU's first plane, as `hdu.section[..., start:stop]`."""

    def __init__(self, hdu: Any) -> None:
        table = hdu._bintable
        header = table.header
        if decompress_rice_1_c is None or unquantize_float_c is None:
            raise Unsupported("astropy's RICE codec is not there")
        axes = int(header["ZNAXIS"])
        if header.get("ZCMPTYPE") not in RICE or not 2 <= axes <= 4:
            raise Unsupported("not a RICE image of two to four axes")
        self.width = int(header["ZNAXIS1"])
        self.height = int(header["ZNAXIS2"])
        if int(header.get("ZTILE1", self.width)) != self.width:
            raise Unsupported("tiles do not hold whole rows")
        # Beyond two axes, tiles of one plane each: the first plane's are the first tiles.
        planes = 1
        for axis in range(3, axes + 1):
            if int(header.get(f"ZTILE{axis}", 1)) != 1:
                raise Unsupported("tiles that span planes")
            planes *= int(header[f"ZNAXIS{axis}"])
        self.tile_rows = int(header.get("ZTILE2", 1))
        if self.width < 1 or self.tile_rows < 1:
            raise Unsupported("an empty image")
        self.bitpix = int(header["ZBITPIX"])
        self.blocksize = _setting(header, "BLOCKSIZE", 32)
        self.bytepix = _setting(header, "BYTEPIX", 4)
        columns, elements = _table_columns(table, header)
        if not elements.get("COMPRESSED_DATA", "").startswith("B"):
            raise Unsupported("compressed bytes stored as wider integers")
        descriptors = columns["COMPRESSED_DATA"].astype(np.int64)
        if descriptors.shape[0] != -(-self.height // self.tile_rows) * planes:
            raise Unsupported("tile table does not match the image")
        # Float tiles that did not quantize are gzipped whole, as big-endian float32.
        self.gzipped: list[tuple[int, int]] | None = None
        if not np.all(descriptors[:, 0] > 0):
            if self.bitpix != -32 or "GZIP_COMPRESSED_DATA" not in columns:
                raise Unsupported("some tiles are stored uncompressed")
            if not elements["GZIP_COMPRESSED_DATA"].startswith("B"):
                raise Unsupported("gzipped bytes stored as wider integers")
            gzipped = columns["GZIP_COMPRESSED_DATA"].astype(np.int64)
            self.gzipped = [(int(n), int(offset)) for n, offset in gzipped]
        self.dither = DITHER_METHODS["NO_DITHER"]
        self.seed = 0
        if self.bitpix < 0:
            if self.bitpix != -32 or "ZSCALE" not in columns or self.bytepix != 4:
                raise Unsupported("floating-point data other than quantized float32")
            self.scales = columns["ZSCALE"].astype(np.float64)
            self.zeros = columns["ZZERO"].astype(np.float64)
            self.dither = DITHER_METHODS[str(header.get("ZQUANTIZ", "NO_DITHER"))]
            self.seed = int(header.get("ZDITHER0", 0))
        elif "ZSCALE" in columns or self.bitpix not in INTEGER_TYPES:
            raise Unsupported("scaled integer tiles")
        self.blanks = columns["ZBLANK"].astype(np.int64) if "ZBLANK" in columns else None
        blank = header.get("ZBLANK", hdu.header.get("BLANK", None))
        self.blank = None if blank is None else int(blank)
        if self.bitpix > 0 and self.blanks is not None:
            raise Unsupported("integer tiles with blanks of their own")
        self.lengths = descriptors[:, 0].tolist()
        self.offsets = descriptors[:, 1].tolist()
        self.heap_size = int(header["PCOUNT"])
        self._hdu = hdu
        self._table = table

    @classmethod
    def of(cls, hdu: Any) -> TileReader | None:
        """A reader for `hdu`, or None when astropy has to read it."""
        try:
            return cls(hdu)
        except Exception:  # unsupported, or an astropy this does not know
            return None

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows `start` to `stop`, with BSCALE and BZERO applied as astropy applies them."""
        first = start // self.tile_rows
        last = -(-stop // self.tile_rows)
        raw = self._decompress(first, last)
        offset = first * self.tile_rows
        if (start - offset, stop - offset) != (0, raw.shape[0]):
            raw = raw[start - offset : stop - offset]
        if self._hdu._do_not_scale_image_data:
            return raw
        return np.asarray(self._hdu._scale_data(raw))

    def _heap(self) -> memoryview:
        table = self._table
        heap = table._get_raw_data(self.heap_size, np.uint8, table._data_offset + table._theap)
        return np.ascontiguousarray(heap).data.cast("B")

    def _decompress(self, first: int, last: int) -> np.ndarray:
        """Tiles `first` to `last` (exclusive) as `decompress_image_data_section` gives them.

        The tiles are decoded a chunk at a time into a small buffer that stays in the CPU's
        cache, and dequantized from there into the image.
        """
        top = first * self.tile_rows
        bottom = min(self.height, last * self.tile_rows)
        floating = self.bitpix < 0
        image = np.empty(
            (bottom - top, self.width), dtype=np.float32 if floating else INTEGER_TYPES[self.bitpix]
        )
        stored = np.dtype(np.int32) if floating else np.dtype(f"i{self.bytepix}")
        # Integers as wide as the image's are the image's bytes already (two's complement).
        direct = not floating and stored.itemsize == image.dtype.itemsize
        per_chunk = max(1, CHUNK_PIXELS // (self.tile_rows * self.width))
        chunk = None if direct else np.empty((per_chunk * self.tile_rows, self.width), stored)
        heap = self._heap()
        scratch: np.ndarray | None = None
        for chunk_first in range(first, last, per_chunk):
            chunk_last = min(chunk_first + per_chunk, last)
            upper = chunk_first * self.tile_rows - top
            lower = min(bottom, chunk_last * self.tile_rows) - top
            part = image[upper:lower]
            quantized = part if chunk is None else chunk[: lower - upper]
            dithered = part if floating and self.dither != -1 else None
            gzipped = self._decode(heap, chunk_first, chunk_last, quantized, dithered)
            if not floating:
                if chunk is not None:
                    part[...] = quantized  # as astropy assigns the tile: a C cast
                continue
            if dithered is None:
                if scratch is None:
                    scratch = np.empty((per_chunk * self.tile_rows, self.width))
                self._dequantize(quantized, part, chunk_first, scratch)
            if self.blanks is not None:
                rows = np.arange(upper + top, lower + top) // self.tile_rows
                part[quantized == self.blanks[rows][:, None]] = np.nan
            elif self.blank is not None:
                part[quantized == self.blank] = np.nan
            for tile, values in gzipped:
                row = tile * self.tile_rows - top - upper
                part[row : row + values.shape[0]] = values
        del heap
        # astropy sets blank integer pixels to the header's blank value, which they hold.
        return image

    def _decode(
        self,
        heap: memoryview,
        first: int,
        last: int,
        quantized: np.ndarray,
        dithered: np.ndarray | None,
    ) -> list[tuple[int, np.ndarray]]:
        """RICE-decode tiles `first` to `last` into `quantized`, and with dithering
        dequantize them into `dithered` too. Gzipped tiles come back as (tile, values).
        """
        target = quantized.data.cast("B")
        floats = None if dithered is None else dithered.data.cast("B")
        itemsize = quantized.dtype.itemsize
        gzipped: list[tuple[int, np.ndarray]] = []
        position = 0
        decompress = decompress_rice_1_c
        for tile in range(first, last):
            pixels = (min(self.height, (tile + 1) * self.tile_rows) - tile * self.tile_rows) * (
                self.width
            )
            size = pixels * itemsize
            length = self.lengths[tile]
            if length == 0:
                gzipped.append((tile, self._gunzip(heap, tile, pixels)))
                position += size
                continue
            offset = self.offsets[tile]
            packed = bytes(heap[offset : offset + length])
            tile_bytes = decompress(packed, self.blocksize, self.bytepix, pixels)
            if len(tile_bytes) != size:  # RICE pads edge tiles; astropy cuts them
                tile_bytes = tile_bytes[:size]
            target[position : position + size] = tile_bytes
            if floats is not None:
                floats[position : position + size] = unquantize_float_c(
                    tile_bytes, tile + self.seed, pixels, self.scales[tile], self.zeros[tile],
                    self.dither, 0, 0, 0.0, 4,
                )  # fmt: skip
            position += size
        return gzipped

    def _gunzip(self, heap: memoryview, tile: int, pixels: int) -> np.ndarray:
        """A float tile stored gzipped, as astropy reads it: the raw values, no blanks."""
        assert self.gzipped is not None
        length, offset = self.gzipped[tile]
        values = gzip.decompress(bytes(heap[offset : offset + length]))
        if len(values) != pixels * 4:
            raise Unsupported("a gzipped tile of another size")
        return np.frombuffer(values, dtype=">f4").reshape(-1, self.width)

    def _dequantize(
        self, quantized: np.ndarray, floats: np.ndarray, first_tile: int, scratch: np.ndarray
    ) -> None:
        """Undithered dequantization, astropy's `q * scale + zero` in float64, to float32.

        `scratch` is float64 room of at least the chunk's size.
        """
        rows = first_tile * self.tile_rows + np.arange(quantized.shape[0])
        tiles = rows // self.tile_rows
        scratch = scratch[: quantized.shape[0]]
        np.multiply(quantized, self.scales[tiles][:, None], out=scratch)
        # The sum in float64, rounded once to float32 on the way out, as astropy's.
        np.add(scratch, self.zeros[tiles][:, None], out=floats, casting="same_kind")
