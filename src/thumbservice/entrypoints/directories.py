"""The directories the service will write to, checked before it starts.

A container may give it a read-only root and a single writable mount (`/tmp`, an emptyDir). A
directory it cannot write is found here, at start-up, and named in one line with the variable
that sets it, rather than as a traceback at start or a failure on every request.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from thumbservice.entrypoints.settings import ConfigError, Settings


def directories_to_write(settings: Settings) -> list[tuple[str, Path]]:
    """(variable, directory) for each directory the chosen adapters write to."""
    needed = [("TMP_DIR", settings.tmp_dir)]
    if settings.store_kind == "local":
        needed.append(("LOCAL_STORE_DIR", settings.local_store_dir))
    if settings.archive_source == "samples":
        from thumbservice.adapters.archive.dev.sample_archive import INDEX_NAME

        # An archive generated beforehand (its index written) is only read.
        if not (settings.sample_archive_dir / INDEX_NAME).is_file():
            needed.append(("SAMPLE_ARCHIVE_DIR", settings.sample_archive_dir))
    return needed


def check_writable(settings: Settings) -> None:
    """Create each directory to write if missing; ConfigError naming the first that is not
    writable."""
    for name, directory in directories_to_write(settings):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=directory)
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise ConfigError(
                f"{name} must be a directory the service can write, but {directory} is not "
                f"({reason}); set {name} to one under a writable mount (TMP_DIR, /tmp in the "
                "container image)"
            ) from None
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
