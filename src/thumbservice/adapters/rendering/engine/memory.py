"""A memory ceiling for a render worker, so that an oversize frame fails the job, not the worker.

Without one, a frame that needs more memory than the machine can give ends under the kernel's
OOM killer: the worker dies mid-render, the pool breaks and every job in it fails. With
`RLIMIT_DATA` set, the allocation that would cross the ceiling fails instead, numpy and Python
raise `MemoryError`, and the renderers turn that into `FrameTooLarge` for this one request.

Why `RLIMIT_DATA` rather than `RLIMIT_AS`: the address-space limit also counts what costs no
memory, the shared libraries and, above all, file mappings. astropy maps the FITS file it
reads, so under `RLIMIT_AS` a plain 8192x8192 float32 frame (256 MiB, of which the fast
renderer touches a band at a time) would need 256 MiB of ceiling just to be opened.
`RLIMIT_DATA` (Linux 4.7 and later) counts only private writable memory: the heap and
anonymous mappings, where numpy's arrays live.

Recommended `RENDER_MEMORY_LIMIT`: 512 MiB (536870912), for the fast renderer. Measured on the
largest frame the service accepts, 67,108,864 pixels (8192x8192, RICE-compressed float32), in
fresh processes (`benchmarks/renderer_benchmark.py --memory-limit`): a worker that has imported
both renderers holds 157 MiB of data; the fast renderer then rendered the frame at 200 px under
a data limit of 173 MiB (the smallest the bisection tried), and at the largest output, 5000 px,
under 448 MiB (its peak RSS was 328 MiB). 512 MiB leaves a margin over the latter. fits2image
needs 2220 MiB for the same frame at 200 px, so with it the limit would have to be 2.5 GiB.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator
from contextlib import contextmanager

from thumbservice.adapters.workspace import NO_SPACE, out_of_space
from thumbservice.domain.errors import (
    FrameTooLarge,
    ScratchSpaceFull,
    ThumbnailError,
    UnreadableFrame,
)

logger = logging.getLogger(__name__)


class OutOfMemory(FrameTooLarge):
    """The render hit the worker's memory limit: the caller gets 422, and the pool replaces the
    worker, whose heap may be left fragmented."""


RECOMMENDED_LIMIT = 512 * 1024 * 1024
"""A `RENDER_MEMORY_LIMIT` that fits the fast renderer's largest frame with room to spare."""

FITS2IMAGE_LIMIT = 3 * 1024 * 1024 * 1024
"""The same for fits2image, which needs 2220 MiB for the largest frame at 200 px."""


def recommended_limit(renderer: str) -> int:
    """The default `RENDER_MEMORY_LIMIT` of a renderer, from its measured need."""
    return RECOMMENDED_LIMIT if renderer == "fast" else FITS2IMAGE_LIMIT


def apply_memory_limit(limit_bytes: int | None) -> None:
    """Cap this process's data segment at `limit_bytes`; None leaves it as it is.

    Call it in the worker process, before its first job: it only ever lowers the soft limit,
    and cannot raise it above a hard limit already in force.

    The linear-algebra library's work buffer is made first (`_prepare_blas`): OpenBLAS
    allocates it on first use, and when that allocation fails it ends the process instead of
    raising. The buffer is made once and counts within the limit either way.
    """
    if limit_bytes is None:
        return
    if limit_bytes <= 0:
        raise ValueError(f"A memory limit must be positive, not {limit_bytes}")
    _prepare_blas()
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    logger.info("Render worker memory limited to %d MiB of data", soft // (1024 * 1024))


def _prepare_blas() -> None:
    """Make OpenBLAS allocate its work buffer now, with memory to spare: fits2image's orientation
    takes the determinant of the CD matrix at the start of every render, and under a ceiling
    reached first there, OpenBLAS would print "Memory allocation still failed" and exit(1),
    a dead worker rather than a clean `OutOfMemory`."""
    import numpy as np

    np.linalg.det(np.eye(2))


@contextmanager
def render_errors_as_domain_errors(log: logging.Logger) -> Iterator[None]:
    """Every failure of a render becomes an error the caller can answer with.

    Domain errors pass; running out of memory is `OutOfMemory` (422, and the pool renews its
    workers); anything else (astropy, numpy or fits2image on a damaged file) is
    `UnreadableFrame`, whose cause, which may name scratch paths, goes to the log only.
    """
    try:
        yield
    except ThumbnailError:
        raise
    except MemoryError:
        raise OutOfMemory("The frame is too large to render within a worker's memory") from None
    except OSError as err:
        if out_of_space(err):
            log.warning("scratch_full: %s", err.strerror)
            raise ScratchSpaceFull(NO_SPACE) from None
        log.warning("unreadable_frame: %s: %s", type(err).__name__, err)
        raise UnreadableFrame("The frame could not be read as a FITS image") from None
    except Exception as err:
        log.warning("unreadable_frame: %s: %s", type(err).__name__, err)
        raise UnreadableFrame("The frame could not be read as a FITS image") from None
