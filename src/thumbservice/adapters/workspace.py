"""Scratch directories under TMP_DIR, one per job, removed whatever happens.

Each directory is named with the owning process id, so a process starting up can tell the
leftovers of a dead process (removed) from the live work of a neighbour sharing TMP_DIR (kept).

A full TMP_DIR (ENOSPC, or a quota: EDQUOT) while a job downloads or renders into its
directory is `ScratchSpaceFull` (a 503 in plain words), logged and reported to `on_full`; the
directory is removed as always. Readiness (`check`) says so while it lasts: until a job gets
through again, for at most `FULL_HOLD` seconds after the last failure (so a replica taken out
of rotation comes back by itself), and whenever less than `MIN_FREE_BYTES` are free.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import structlog

from thumbservice.domain.errors import ScratchSpaceFull
from thumbservice.domain.spec import is_ascii_digits

PREFIX = "thumbservice-"
FULL_HOLD = 30.0
MIN_FREE_BYTES = 8 * 1024 * 1024
NO_SPACE = "There is no scratch space left to make this thumbnail; retry later"

log = structlog.get_logger("thumbservice.scratch")


def out_of_space(err: BaseException) -> bool:
    """Whether an error is a full disk or an exhausted quota."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


class TempWorkspace:
    def __init__(
        self,
        tmp_dir: Path,
        on_full: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tmp_dir = tmp_dir
        self.on_full = on_full
        self.clock = clock
        self._full_at: float | None = None

    @asynccontextmanager
    async def directory(self) -> AsyncIterator[Path]:
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=self.tmp_dir))
        except OSError as err:
            if out_of_space(err):
                raise self._full(err) from None
            raise
        try:
            yield path
        except OSError as err:
            if out_of_space(err):
                raise self._full(err) from None
            raise
        except ScratchSpaceFull:
            self._full_at = self.clock()  # met by a render worker
            self._report()
            raise
        else:
            self._full_at = None
        finally:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))

    async def check(self) -> None:
        """Raise ScratchSpaceFull while TMP_DIR is full (readiness; see the module doc)."""
        if self._full_at is not None and self.clock() - self._full_at < FULL_HOLD:
            raise ScratchSpaceFull("The scratch space is full")
        try:
            free = await asyncio.to_thread(_free_bytes, self.tmp_dir)
        except OSError:
            return  # not made yet, or not ours to judge: the next job will tell
        if free < MIN_FREE_BYTES:
            raise ScratchSpaceFull("The scratch space is full")

    def _full(self, err: OSError) -> ScratchSpaceFull:
        self._full_at = self.clock()
        log.error("scratch_full", tmp_dir=str(self.tmp_dir), error=err.strerror)
        self._report()
        return ScratchSpaceFull(NO_SPACE)

    def _report(self) -> None:
        if self.on_full is not None:
            self.on_full()

    def clean_stale(self) -> int:
        """At start-up: remove the scratch directories of processes that no longer run.

        Directories named with this very pid are leftovers too (a restarted container often gets
        the same pid), since this process has not made any yet.
        """
        own = os.getpid()
        return self._clean(lambda pid: pid == own or not _alive(pid))

    def clean_own(self) -> int:
        """Remove this process's scratch directories (at shutdown)."""
        own = os.getpid()
        return self._clean(lambda pid: pid == own)

    def _clean(self, should_remove: Callable[[int], bool]) -> int:
        removed = 0
        if not self.tmp_dir.is_dir():
            return 0
        for entry in self.tmp_dir.iterdir():
            if not entry.name.startswith(PREFIX):
                continue
            pid_text = entry.name[len(PREFIX) :].split("-", 1)[0]
            if not is_ascii_digits(pid_text) or not should_remove(int(pid_text)):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed


def _free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
