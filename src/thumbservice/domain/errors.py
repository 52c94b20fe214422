"""What can go wrong, in the words of the domain.

Every error carries a message meant for the caller. The entrypoint maps each class to an HTTP
status; the domain itself knows nothing of HTTP. Errors cross the render process boundary, so
they keep to plain positional arguments and pickle cleanly.
"""

from __future__ import annotations

DEFAULT_RETRY_AFTER = 5
"""Seconds a caller is asked to wait before retrying when the service is busy or degraded."""


class ThumbnailError(Exception):
    """Base of every error the service answers with a message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(ThumbnailError):
    """A query parameter or path segment that the service refuses."""


class FrameNotEligible(ThumbnailError):
    """The frame exists but the rules forbid a thumbnail of it (type, file kind, missing keys)."""


class FrameNotFound(ThumbnailError):
    """The archive does not show this frame to this caller (missing, or not theirs)."""


class ColorFramesNotFound(FrameNotFound):
    """The request lacks one of the red, visual and blue frames."""


class ArchiveRefused(ThumbnailError):
    """The archive refused the caller (bad token, forbidden, throttled): its status is passed on."""

    def __init__(
        self, message: str, status: int, detail: object = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after  # a throttling archive's own estimate, passed on

    def __reduce__(self) -> tuple[type, tuple[str, int, object, int | None]]:
        return (type(self), (self.message, self.status, self.detail, self.retry_after))


class ArchiveUnavailable(ThumbnailError):
    """The archive answered with a server error, or could not be reached."""


class ArchiveTimeout(ThumbnailError):
    """The archive did not answer in time."""


class FrameTooLarge(ThumbnailError):
    """The frame's file or image exceeds a configured limit."""


class UnreadableFrame(ThumbnailError):
    """The downloaded file is not a FITS image that can be rendered."""


class RenderFailed(ThumbnailError):
    """The renderer itself failed (a crashed worker, an exhausted pool)."""


class Overloaded(ThumbnailError):
    """Too much work is already waiting: the caller should retry later."""

    def __init__(self, message: str, retry_after: int = DEFAULT_RETRY_AFTER) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return (type(self), (self.message, self.retry_after))


class StoreUnavailable(ThumbnailError):
    """The object store could not be reached or refused the operation."""


class ScratchSpaceFull(ThumbnailError):
    """The scratch space (TMP_DIR) has no room left for a frame's download or render."""


class DeadlineExceeded(ThumbnailError):
    """The request took longer than its overall deadline."""
