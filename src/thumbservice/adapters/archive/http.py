"""The science archive over HTTP: one aiohttp ClientSession for the life of the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from yarl import URL

from thumbservice.domain.errors import (
    ArchiveRefused,
    ArchiveTimeout,
    ArchiveUnavailable,
    FrameNotFound,
    FrameTooLarge,
)
from thumbservice.domain.frames import Frame

WRITE_SIZE = 4 << 20

log = structlog.get_logger("thumbservice.archive")
MAX_PAGES = 50


class HttpArchive:
    """ArchiveGateway for an OCS Science Archive API (`root` ends with `/`).

    The caller's Authorization header goes to the archive, and only to the archive: it is never
    sent to a host other than the archive's own (a `next` link elsewhere, a file URL), since file
    URLs are presigned by the archive's storage and a second credential makes S3 refuse them.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        root: str,
        *,
        metadata_timeout: float = 10.0,
        list_timeout: float = 30.0,
        download_timeout: float = 60.0,
        max_download_bytes: int = 1 << 30,
    ) -> None:
        self.session = session
        self.root = URL(root if root.endswith("/") else root + "/")
        self.metadata_timeout = metadata_timeout
        self.list_timeout = list_timeout
        self.download_timeout = download_timeout
        self.max_download_bytes = max_download_bytes

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame:
        url = self.root / "frames" / str(frame_id) / ""
        try:
            return Frame.from_record(
                await self._get_json(url, authorization, self.metadata_timeout)
            )
        except FrameNotFound:
            raise FrameNotFound(f"Frame {frame_id} not found") from None

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]:
        url = (self.root / "frames" / "").with_query(basename_exact=basename)
        page = await self._get_json(url, authorization, self.metadata_timeout)
        return _results(page)

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        url: URL | None = (self.root / "frames" / "").with_query(
            request_id=str(observing_request_id), reduction_level=str(reduction_level), limit="1000"
        )
        frames: list[Frame] = []
        pages = 0
        while url is not None and pages < MAX_PAGES:
            page = await self._get_json(url, authorization, self.list_timeout)
            frames.extend(_results(page))
            pages += 1
            following = page.get("next")
            url = URL(following) if isinstance(following, str) and following else None
        return frames

    async def download(self, frame: Frame, destination: Path) -> int:
        if not frame.url:
            raise ArchiveUnavailable(f"Frame {frame.id} has no download url")
        name = frame.filename or str(frame.id)
        # encoded=True: a presigned URL must be used exactly as given.
        url = URL(frame.url, encoded=True)
        if not url.is_absolute():
            url = self.root.join(url)
        timeout = aiohttp.ClientTimeout(total=self.download_timeout, sock_connect=10)
        written = 0
        try:
            async with self.session.get(url, timeout=timeout) as response:
                if response.status != 200:
                    raise ArchiveUnavailable(
                        f"Downloading {name} failed: the file store answered {response.status}"
                    )
                declared = response.content_length
                if declared is not None and declared > self.max_download_bytes:
                    raise FrameTooLarge(
                        f"{name} is {declared} bytes, above the limit of "
                        f"{self.max_download_bytes} bytes"
                    )
                with destination.open("wb") as out:
                    # The network hands over pieces of tens of KB; they are gathered and written
                    # a few MB at a time, off the loop (a slow disk must not stall it), so a
                    # frame costs a handful of thread hops rather than hundreds.
                    # The pieces are kept as they came (no growing buffer to reallocate).
                    pending: list[bytes] = []
                    held = 0
                    async for chunk in response.content.iter_any():
                        written += len(chunk)
                        if written > self.max_download_bytes:
                            raise FrameTooLarge(
                                f"{name} is larger than the limit of "
                                f"{self.max_download_bytes} bytes"
                            )
                        pending.append(chunk)
                        held += len(chunk)
                        if held >= WRITE_SIZE:
                            await asyncio.to_thread(out.writelines, pending)
                            pending, held = [], 0
                    if pending:
                        await asyncio.to_thread(out.writelines, pending)
        except TimeoutError:
            _remove(destination)
            raise ArchiveTimeout(
                f"Downloading {name} took longer than {self.download_timeout:g} s"
            ) from None
        except aiohttp.ClientError as err:
            _remove(destination)
            log.warning("download_failed", frame=frame.id, error=_describe(err))
            raise ArchiveUnavailable(
                f"Downloading {name} failed: the file store could not be reached"
            ) from None
        except BaseException:
            _remove(destination)
            raise
        return written

    async def check(self) -> None:
        url = (self.root / "frames" / "").with_query(limit="1")
        timeout = aiohttp.ClientTimeout(total=min(self.metadata_timeout, 5.0))
        try:
            async with self.session.get(url, timeout=timeout) as response:
                if response.status >= 500:
                    raise ArchiveUnavailable(f"The archive answered {response.status}")
        except TimeoutError:
            raise ArchiveTimeout("The archive did not answer in time") from None
        except aiohttp.ClientError as err:
            log.warning("archive_unreachable", error=_describe(err))
            raise ArchiveUnavailable("The archive cannot be reached") from None

    def _headers(self, url: URL, authorization: str | None) -> dict[str, str]:
        if authorization and url.origin() == self.root.origin():
            return {"Authorization": authorization}
        return {}

    async def _get_json(
        self, url: URL, authorization: str | None, timeout_s: float
    ) -> Mapping[str, Any]:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self.session.get(
                url, headers=self._headers(url, authorization), timeout=timeout
            ) as response:
                body = await _json_or_none(response)
                status = response.status
                retry_after = response.headers.get("Retry-After", "")
        except TimeoutError:
            raise ArchiveTimeout(f"The archive did not answer within {timeout_s:g} s") from None
        except aiohttp.ClientError as err:
            log.warning("archive_unreachable", error=_describe(err))
            raise ArchiveUnavailable("The archive cannot be reached") from None
        if status == 200:
            if not isinstance(body, Mapping):
                raise ArchiveUnavailable("The archive answered with something other than JSON")
            return body
        if status == 404:
            raise FrameNotFound("Frame not found")
        if 400 <= status < 500:
            detail = body.get("detail") if isinstance(body, Mapping) else None
            raise ArchiveRefused(
                f"The archive refused the request ({status}): {detail or 'no detail given'}",
                status,
                body,
                int(retry_after) if retry_after.isascii() and retry_after.isdigit() else None,
            )
        raise ArchiveUnavailable(f"The archive answered {status}")


def _results(page: Mapping[str, Any]) -> list[Frame]:
    results = page.get("results")
    if not isinstance(results, list):
        raise ArchiveUnavailable("The archive's list answer has no results")
    return [Frame.from_record(r) for r in results if isinstance(r, Mapping)]


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError, UnicodeDecodeError):
        return None


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def open_session(limit: int = 100) -> aiohttp.ClientSession:
    """The app's one ClientSession (closed by the caller at shutdown)."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, raise_for_status=False)
