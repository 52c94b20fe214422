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

It takes only what it knows: a 2-D RICE image whose tiles hold whole rows, compressed bytes
in the COMPRESSED_DATA column of every tile, integer data or quantized float32. Anything else,
and an astropy whose internals differ from what this expects, is read by astropy as before:
`TileReader.of` answers None, or `rows` raises `Unsupported` for a tile it cannot take.
"""

from __future__ import annotations

import gzip
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

DEQUANTIZE_ROWS = 64
"""Rows dequantized at a time: the float64 scratch stays in the CPU's cache."""

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


class TileReader:
    """Rows of a RICE-compressed 2-D image HDU, as `hdu.section[start:stop]` gives them."""

    def __init__(self, hdu: Any) -> None:
        table = hdu._bintable
        header = table.header
        if decompress_rice_1_c is None or unquantize_float_c is None:
            raise Unsupported("astropy's RICE codec is not there")
        if header.get("ZCMPTYPE") not in RICE or int(header["ZNAXIS"]) != 2:
            raise Unsupported("not a 2-D RICE image")
        self.width = int(header["ZNAXIS1"])
        self.height = int(header["ZNAXIS2"])
        if int(header.get("ZTILE1", self.width)) != self.width:
            raise Unsupported("tiles do not hold whole rows")
        self.tile_rows = int(header.get("ZTILE2", 1))
        self.bitpix = int(header["ZBITPIX"])
        self.blocksize = _setting(header, "BLOCKSIZE", 32)
        self.bytepix = _setting(header, "BYTEPIX", 4)
        data = table.data
        names = data.dtype.names
        column = data.columns["COMPRESSED_DATA"]
        if column.format.removeprefix("1")[1] != "B":
            raise Unsupported("compressed bytes stored as wider integers")
        descriptors = np.array(data["COMPRESSED_DATA"], dtype=np.int64).reshape(-1, 2)
        tiles = -(-self.height // self.tile_rows)
        if descriptors.shape[0] != tiles or self.width < 1 or self.tile_rows < 1:
            raise Unsupported("tile table does not match the image")
        # Float tiles that did not quantize are gzipped whole, as big-endian float32.
        self.gzipped: list[tuple[int, int]] | None = None
        if not np.all(descriptors[:, 0] > 0):
            if self.bitpix != -32 or "GZIP_COMPRESSED_DATA" not in names:
                raise Unsupported("some tiles are stored uncompressed")
            if data.columns["GZIP_COMPRESSED_DATA"].format.removeprefix("1")[1] != "B":
                raise Unsupported("gzipped bytes stored as wider integers")
            gzipped = np.array(data["GZIP_COMPRESSED_DATA"], dtype=np.int64).reshape(-1, 2)
            self.gzipped = [(int(n), int(offset)) for n, offset in gzipped]
        self.quantized = "ZSCALE" in names
        self.dither = DITHER_METHODS["NO_DITHER"]
        self.seed = 0
        if self.bitpix < 0:
            if self.bitpix != -32 or not self.quantized or self.bytepix != 4:
                raise Unsupported("floating-point data other than quantized float32")
            self.scales = np.array(data["ZSCALE"], dtype=np.float64)
            self.zeros = np.array(data["ZZERO"], dtype=np.float64)
            self.dither = DITHER_METHODS[str(header.get("ZQUANTIZ", "NO_DITHER"))]
            self.seed = int(header.get("ZDITHER0", 0))
        elif self.quantized or self.bitpix not in INTEGER_TYPES:
            raise Unsupported("scaled integer tiles")
        self.blanks = np.array(data["ZBLANK"], dtype=np.int64) if "ZBLANK" in names else None
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
        raw = raw[start - offset : stop - offset]
        if self._hdu._do_not_scale_image_data:
            return raw
        return np.asarray(self._hdu._scale_data(raw))

    def _heap(self) -> memoryview:
        table = self._table
        heap = table._get_raw_data(self.heap_size, np.uint8, table._data_offset + table._theap)
        return np.ascontiguousarray(heap).data.cast("B")

    def _decompress(self, first: int, last: int) -> np.ndarray:
        """Tiles `first` to `last` (exclusive) as `decompress_image_data_section` gives them."""
        top = first * self.tile_rows
        bottom = min(self.height, last * self.tile_rows)
        stored = np.int32 if self.bitpix < 0 else np.dtype(f"i{self.bytepix}")
        quantized = np.empty((bottom - top, self.width), dtype=stored)
        target = quantized.data.cast("B")
        floats = None
        if self.bitpix < 0 and self.dither != -1:
            floats = np.empty((bottom - top, self.width), dtype=np.float32)
            unquantized = floats.data.cast("B")
        heap = self._heap()
        itemsize = quantized.dtype.itemsize
        position = 0
        decompress = decompress_rice_1_c
        whole_floats: list[tuple[int, np.ndarray]] = []
        for tile in range(first, last):
            pixels = (min(self.height, (tile + 1) * self.tile_rows) - tile * self.tile_rows) * (
                self.width
            )
            length = self.lengths[tile]
            if length == 0:
                whole_floats.append((tile, self._gunzip(heap, tile, pixels)))
                position += pixels * itemsize
                continue
            offset = self.offsets[tile]
            packed = bytes(heap[offset : offset + length])
            tile_bytes = decompress(packed, self.blocksize, self.bytepix, pixels)
            size = pixels * itemsize
            if len(tile_bytes) != size:  # RICE pads edge tiles; astropy cuts them
                tile_bytes = tile_bytes[:size]
            target[position : position + size] = tile_bytes
            if floats is not None:
                unquantized[position : position + size] = unquantize_float_c(
                    tile_bytes, tile + self.seed, pixels, self.scales[tile], self.zeros[tile],
                    self.dither, 0, 0, 0.0, 4,
                )  # fmt: skip
            position += size
        del heap, target
        if self.bitpix > 0:
            # astropy sets blank pixels to the header's blank value, which they already hold.
            return quantized.astype(INTEGER_TYPES[self.bitpix], copy=False)
        tile_of_row = np.arange(top, bottom) // self.tile_rows
        blank_mask = None
        if self.blanks is not None:
            blank_mask = quantized == self.blanks[tile_of_row][:, None]
        elif self.blank is not None:
            blank_mask = quantized == self.blank
        if floats is None:
            floats = self._dequantize(quantized, tile_of_row)
        if blank_mask is not None and blank_mask.any():
            floats[blank_mask] = np.nan
        for tile, values in whole_floats:
            row = tile * self.tile_rows - top
            floats[row : row + values.shape[0]] = values
        return floats

    def _gunzip(self, heap: memoryview, tile: int, pixels: int) -> np.ndarray:
        """A float tile stored gzipped, as astropy reads it: the raw values, no blanks."""
        assert self.gzipped is not None
        length, offset = self.gzipped[tile]
        values = gzip.decompress(bytes(heap[offset : offset + length]))
        if len(values) != pixels * 4:
            raise Unsupported("a gzipped tile of another size")
        return np.frombuffer(values, dtype=">f4").reshape(-1, self.width)

    def _dequantize(self, quantized: np.ndarray, tile_of_row: np.ndarray) -> np.ndarray:
        """Undithered dequantization, astropy's `q * scale + zero` in float64, to float32."""
        floats = np.empty(quantized.shape, dtype=np.float32)
        scales = self.scales[tile_of_row][:, None]
        zeros = self.zeros[tile_of_row][:, None]
        scratch = np.empty((min(DEQUANTIZE_ROWS, quantized.shape[0]), self.width))
        for top in range(0, quantized.shape[0], DEQUANTIZE_ROWS):
            bottom = min(top + DEQUANTIZE_ROWS, quantized.shape[0])
            part = scratch[: bottom - top]
            np.multiply(quantized[top:bottom], scales[top:bottom], out=part)
            # The sum in float64, rounded once to float32 on the way out, as astropy's.
            np.add(part, zeros[top:bottom], out=floats[top:bottom], casting="same_kind")
        return floats
