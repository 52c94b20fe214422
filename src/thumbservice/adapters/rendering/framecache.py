"""The frame cache: full-resolution 8-bit pictures of frames, in files every worker maps.

One entry is one picture (`domain/pictures.py` names it): a 64-byte header, then the pixels as
Pillow lays them out, one byte a pixel for black and white, four (R, G, B, unused) for color,
so that Pillow maps the file rather than copying it. The render workers of one replica map the
same files, so they share them through the page cache.

* **Written whole or not at all.** The picture is made in the worker's memory, then written
  under a temporary name (a leading dot, never read) and renamed to its name: a reader sees
  the whole entry or none, and a full disk is an error of the write, the picture still in hand.
* **Checked when opened.** A header that is not ours, a size that disagrees with it, or a
  checksum that does not match (`checksum`, 1 ms on 16 MiB) and the entry is removed and the
  reader treats it as absent: the picture is made again. A worker checks each file once (by
  inode, size and modification time), not on every view.
* **Bounded, least recently used first.** The index (`FrameCache`) lives in the server
  process, which hands out every job: it knows what was written and what was used, and removes
  the least recently used entries once `FRAME_CACHE_BYTES` is passed. A worker still reading
  a removed entry keeps its mapping (Linux frees the file when the last mapping goes).
* **Per start.** The directory is emptied when the cache is created (the entries of an earlier
  process are not in its index) and removed at shutdown.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import shutil
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"TSFRAME1"
HEADER = struct.Struct("<8sIIII")
"""magic, height, width, bytes a pixel (1 or 4), the pixels' checksum."""
HEADER_BYTES = 64
SUFFIX = ".picture"
PARTIAL = ".partial"

DIRECTORY_MARK = "-frames-"
"""In the name of a process's cache directory: `thumbservice-<pid>-frames-<token>`, named as
scratch directories are so that a later start removes a dead process's."""

_checked: dict[str, tuple[int, int, int]] = {}
"""Files this process has checked, by path: (inode, size, mtime_ns) when it did."""


def is_cache_directory(path: Path) -> bool:
    """Whether `path` is a process's frame-cache directory (it lives for the whole process,
    beside the scratch directories of jobs, which come and go)."""
    return DIRECTORY_MARK in path.name and path.is_dir()


def entry_path(directory: Path, key: str) -> Path:
    if not key.isalnum():
        raise ValueError(f"not a picture key: {key!r}")
    return directory / f"{key}{SUFFIX}"


def entry_bytes(height: int, width: int, bands: int) -> int:
    """The size of an entry on disk."""
    return HEADER_BYTES + height * width * bands


@dataclass
class Picture:
    """A picture mapped from its entry, read-only: `pixels` is height x width (x 4 for color)."""

    pixels: np.ndarray
    _map: mmap.mmap

    @property
    def bands(self) -> int:
        return 1 if self.pixels.ndim == 2 else 4

    def close(self) -> None:
        # The array must go first: a mapping with views on it cannot be closed.
        self.pixels = np.empty((0, 0), np.uint8)
        with contextlib.suppress(BufferError):
            self._map.close()


def checksum(pixels: np.ndarray) -> int:
    """The sum of the pixels' bytes read as 64-bit words (and of the last few bytes), modulo
    2**64, folded to 32 bits: any changed word, a page zeroed or a block moved within the
    file changes it. 1 ms on 16 MiB, where CRC-32 took 8 ms on the cold path."""
    flat = np.ascontiguousarray(pixels).reshape(-1)
    whole = flat.size // 8 * 8
    total = int(flat[:whole].view(np.uint64).sum(dtype=np.uint64)) if whole else 0
    total += int(flat[whole:].sum(dtype=np.uint64)) * 0x9E3779B97F4A7C15
    total += flat.size
    total %= 1 << 64
    return (total ^ (total >> 32)) & 0xFFFFFFFF


def write_entry(directory: Path, key: str, pixels: np.ndarray) -> int:
    """Write the picture `pixels` (height x width uint8, or height x width x 4) as the entry
    `key`: under a temporary name first, renamed once whole. Its size in bytes.

    Raises OSError when the directory cannot take it (a full disk); nothing is left then.
    One `write` of the whole picture: filling a shared mapping of a new file instead cost
    a page fault through the filesystem for every 4 KiB (50 ms for 16 MiB on ext4).
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError("a picture is uint8, height x width (x 4)")
    bands = 1 if pixels.ndim == 2 else pixels.shape[2]
    if bands not in (1, 4):
        raise ValueError(f"a picture has 1 or 4 bytes a pixel, not {bands}")
    height, width = pixels.shape[:2]
    path = entry_path(directory, key)
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".{key}.{os.getpid()}.{secrets.token_hex(4)}{PARTIAL}"
    header = HEADER.pack(MAGIC, height, width, bands, checksum(pixels)).ljust(HEADER_BYTES, b"\0")
    try:
        with open(temp, "xb") as out:
            out.write(header)
            out.write(np.ascontiguousarray(pixels).data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    stat = path.stat()
    _checked[str(path)] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return stat.st_size


def open_picture(path: Path) -> Picture | None:
    """The entry at `path`, mapped; None when there is none. An entry that is truncated or
    corrupt is removed, and None returned: the caller makes the picture again."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        stat = os.fstat(fd)
        if stat.st_size < HEADER_BYTES:
            raise _Corrupt
        mapped = mmap.mmap(fd, stat.st_size, access=mmap.ACCESS_READ)
    except (_Corrupt, OSError, ValueError):
        _discard(path)
        return None
    finally:
        os.close(fd)
    try:
        magic, height, width, bands, crc = HEADER.unpack_from(mapped)
        if magic != MAGIC or bands not in (1, 4) or not height or not width:
            raise _Corrupt
        if stat.st_size != entry_bytes(height, width, bands):
            raise _Corrupt
        count = height * width * bands
        pixels = np.frombuffer(mapped, np.uint8, count=count, offset=HEADER_BYTES)
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if _checked.get(str(path)) != identity:
            if checksum(pixels) != crc:
                raise _Corrupt
            _checked[str(path)] = identity
        shape = (height, width) if bands == 1 else (height, width, 4)
        return Picture(pixels.reshape(shape), mapped)
    except (_Corrupt, struct.error):
        with contextlib.suppress(BufferError):
            mapped.close()
        _discard(path)
        return None


class _Corrupt(Exception):
    pass


def _discard(path: Path) -> None:
    _checked.pop(str(path), None)
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


class FrameCache:
    """The index of the entries under `directory`, least recently used first, within
    `max_bytes` (0: the cache is off, nothing is kept).

    It lives in the server process; the workers write and read the files. `on_evict` is told
    of every entry removed to make room.
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        on_evict: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.on_evict = on_evict
        self._entries: OrderedDict[str, int] = OrderedDict()
        self.bytes_in_use = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def path(self, key: str) -> Path:
        return entry_path(self.directory, key)

    def clean(self) -> int:
        """Empty the directory (at start and at stop); the number of files removed."""
        self._entries.clear()
        self.bytes_in_use = 0
        if not self.directory.is_dir():
            return 0
        removed = 0
        for entry in self.directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def remove_directory(self) -> None:
        self.clean()
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def used(self, key: str) -> None:
        """A view was drawn from the entry: it becomes the most recently used."""
        if key in self._entries:
            self._entries.move_to_end(key)

    def added(self, key: str, size: int) -> None:
        """A worker wrote the entry: index it, then make room by removing the oldest."""
        if size <= 0:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.bytes_in_use -= previous
        if size > self.max_bytes:
            # Larger than the whole cache on its own (workers do not write those): not kept.
            self.path(key).unlink(missing_ok=True)
            return
        self._entries[key] = size
        self.bytes_in_use += size
        evicted = 0
        while self.bytes_in_use > self.max_bytes:
            oldest, oldest_size = next(iter(self._entries.items()))
            self._forget(oldest, oldest_size)
            evicted += 1
        if evicted and self.on_evict is not None:
            self.on_evict(evicted)

    def dropped(self, key: str) -> None:
        """The entry could not be read (removed, corrupt): forget it."""
        size = self._entries.pop(key, None)
        if size is not None:
            self.bytes_in_use -= size
        self.path(key).unlink(missing_ok=True)

    def _forget(self, key: str, size: int) -> None:
        del self._entries[key]
        self.bytes_in_use -= size
        self.path(key).unlink(missing_ok=True)
