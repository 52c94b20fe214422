"""Scratch directories under TMP_DIR, one per job, removed whatever happens.

Each directory is named with the owning process id, so a process starting up can tell the
leftovers of a dead process (removed) from the live work of a neighbour sharing TMP_DIR (kept).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from thumbservice.domain.spec import is_ascii_digits

PREFIX = "thumbservice-"


class TempWorkspace:
    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir

    @asynccontextmanager
    async def directory(self) -> AsyncIterator[Path]:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=self.tmp_dir))
        try:
            yield path
        finally:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
