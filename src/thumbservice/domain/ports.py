"""The ports: what the use case needs from the world, as small Protocols.

Adapters implement them; tests implement them with hand-written fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from thumbservice.domain.frames import Frame
from thumbservice.domain.iiif import ImageRequest, RenderedView
from thumbservice.domain.spec import ThumbnailSpec


class ArchiveGateway(Protocol):
    """Reads frames from the science archive, always on behalf of one caller.

    `authorization` is the caller's Authorization header, forwarded unchanged (None: anonymous).
    Errors are raised as domain errors (FrameNotFound, ArchiveRefused, ArchiveUnavailable, ...).
    """

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame: ...

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]: ...

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        """Every frame of one observing request at that reduction level, in the archive's order."""
        ...

    async def download(self, frame: Frame, destination: Path) -> int:
        """Stream the frame's file to `destination`; return the number of bytes written."""
        ...

    async def check(self) -> None:
        """Raise if the archive cannot be reached (readiness)."""
        ...


class ImageRenderer(Protocol):
    """Turns FITS files into an encoded image in the spec's format, off the event loop."""

    async def render(self, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path) -> bytes:
        """One source for black-and-white, three (red, visual, blue) for color."""
        ...


class FramePictures(Protocol):
    """Full-resolution pictures of frames, kept by the renderer of this replica, from which
    every further view of a frame is drawn (`domain/pictures.py` names them).

    A kept picture holds pixels only: whether a caller may see the frame is still asked of the
    archive on every request.
    """

    def holds(self, key: str) -> bool:
        """Whether the picture `key` is kept: a view of it then needs no download."""
        ...

    async def draw(self, key: str, spec: ThumbnailSpec) -> bytes | None:
        """The thumbnail of `spec` drawn from the kept picture, or None when it is not kept
        (any more)."""
        ...

    async def render_and_keep(
        self, key: str, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path
    ) -> bytes:
        """Render from the files, as `ImageRenderer.render`, and keep the picture as `key`."""
        ...


class ViewRenderer(Protocol):
    """Views of a frame's full-resolution picture (IIIF regions, sizes, turns), off the loop."""

    async def render_view(
        self,
        sources: Sequence[Path],
        spec: ThumbnailSpec,
        request: ImageRequest | None,
        workdir: Path,
        picture: str | None = None,
    ) -> RenderedView:
        """The picture of `sources` drawn with the spec's display options, its size, and the
        request resolved on it and encoded (None: the size only). A region or size the
        picture cannot give raises InvalidParameter. `picture` is the picture's key
        (`domain/pictures.py`) for a renderer that keeps pictures."""
        ...


class ObjectStore(Protocol):
    """Where rendered thumbnails are kept and from where callers fetch them."""

    async def exists(self, key: str) -> bool: ...

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def url_for(self, key: str, expires_in: int) -> str:
        """A URL that serves the object, without credentials, until it expires."""
        ...

    async def check(self) -> None:
        """Raise if the store cannot be reached (readiness)."""
        ...


class LeaseStore(Protocol):
    """Small objects written only on a condition, one per cache key: the building block of one
    render across replicas (see `domain/leases.py`).

    A `version` is what a conditional write compares (S3's ETag): every write makes a new one.
    Failures to reach the store raise StoreUnavailable.
    """

    async def create(self, key: str, body: bytes) -> str | None:
        """Write the lease of `key` if there is none; its version, or None if one exists."""
        ...

    async def replace(self, key: str, body: bytes, version: str) -> str | None:
        """Overwrite the lease if it is still at `version`; the new version, or None if it has
        changed or is gone."""
        ...

    async def read(self, key: str) -> tuple[bytes, str] | None:
        """The lease's body and version; None if there is none."""
        ...

    async def delete(self, key: str, version: str) -> None:
        """Remove the lease if it is still at `version`; leave it otherwise."""
        ...


class Workspace(Protocol):
    """Scratch space for downloads and renders, removed whatever happens."""

    def directory(self) -> AbstractAsyncContextManager[Path]: ...


class Telemetry(Protocol):
    """What the use case reports as it works (counters and timings)."""

    def cache_lookup(self, hit: bool) -> None: ...

    def single_flight_joined(self) -> None: ...

    def frame_cache_lookup(self, hit: bool) -> None:
        """A view drawn from a kept picture (hit), or a render from the files that keeps one."""
        ...

    def downloaded(self, nbytes: int) -> None: ...

    def rendered(self, seconds: float, color: bool) -> None: ...

    def store_failed(self, operation: str) -> None: ...

    def lease(self, outcome: str) -> None:
        """A claim's outcome: won, lost (this replica waited), taken_over, unavailable."""
        ...

    def lease_waited(self, seconds: float) -> None: ...


class NullTelemetry:
    """Telemetry that records nothing."""

    def cache_lookup(self, hit: bool) -> None:
        pass

    def single_flight_joined(self) -> None:
        pass

    def frame_cache_lookup(self, hit: bool) -> None:
        pass

    def downloaded(self, nbytes: int) -> None:
        pass

    def rendered(self, seconds: float, color: bool) -> None:
        pass

    def store_failed(self, operation: str) -> None:
        pass

    def lease(self, outcome: str) -> None:
        pass

    def lease_waited(self, seconds: float) -> None:
        pass
