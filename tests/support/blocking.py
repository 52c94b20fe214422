"""A frame file whose reader blocks until the test lets it go: a job demonstrably under way.

The file is a named pipe. A render worker opening it waits (in `open`, then in `read`) until
the test writes to it or closes it, so the test knows a worker is inside the job, and can keep
it there as long as it likes, without guessing how long a render takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from pathlib import Path
from types import TracebackType


class BlockingFrame:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: int | None = None

    def __enter__(self) -> BlockingFrame:
        os.mkfifo(self.path)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
        self.path.unlink(missing_ok=True)

    def reader_waiting(self) -> bool:
        """Whether a process has the file open for reading (and is blocked on it)."""
        if self._writer is None:
            try:
                # Opening a pipe's write end without blocking succeeds only once a reader holds
                # the other end; it also lets that reader's `open` return, into a blocked `read`.
                self._writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as err:
                if err.errno != errno.ENXIO:
                    raise
                return False
        return True

    async def opened_by_a_worker(self, patience: float = 180.0) -> None:
        """Return once a reader has the file open: a worker is inside the job."""
        async with asyncio.timeout(patience):
            while not self.reader_waiting():
                await asyncio.sleep(0.01)

    def release(self) -> None:
        """End of file for the reader (an unreadable frame, for a render)."""
        if self._writer is None:
            # A reader may be blocked in `open`, waiting for a writer: be one for a moment (a
            # read-write open never blocks), so that it reads end of file and goes on.
            with contextlib.suppress(OSError):
                self._writer = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        if self._writer is not None:
            with contextlib.suppress(OSError):
                os.close(self._writer)
            self._writer = None
