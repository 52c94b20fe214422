"""The science archive over HTTP: two aiohttp ClientSessions for the life of the app.

Calls to the archive's API carry callers' tokens; file downloads go to presigned URLs. They never
share a connection: downloads have their own session, whose connections are not reused at all,
so whatever a file server leaves on a connection after a body (a desynchronised proxy's extra
response, say) can reach neither an API call nor another download. Every record the archive
returns is checked against what was asked for, and every answer is bounded in size, parsed
off the event loop when large, and read as untrusted input: anything else is a 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

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
from thumbservice.domain.spec import MAX_FRAME_ID

T = TypeVar("T")
WRITE_SIZE = 4 << 20

log = structlog.get_logger("thumbservice.archive")
MAX_PAGES = 50
DEFAULT_MAX_ANSWER_BYTES = 8 << 20
"""The largest API answer read: a full page of 1000 records is about 2 MB."""
PARSE_OFF_LOOP_BYTES = 256 << 10
"""Answers larger than this are parsed in a thread, not on the event loop."""
RETRY_AFTER_RANGE = (1, 300)
"""An archive's Retry-After (seconds) is passed on clamped to this range."""
UNREADABLE = "The archive answered something unreadable"
MISMATCH = "The archive answered something unreadable: not the record asked for"
STRING_KEYS = (
    "basename", "filename", "url", "proposal_id", "configuration_type", "primary_optical_element",
)  # fmt: skip
INTEGER_KEYS = ("request_id", "reduction_level")


class _Unreadable(Exception):
    """An answer that is not what the archive's API answers; `detail` goes to the log only."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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
        download_session: aiohttp.ClientSession | None = None,
        metadata_timeout: float = 10.0,
        list_timeout: float = 30.0,
        download_timeout: float = 60.0,
        max_download_bytes: int = 1 << 30,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        """`session` is for the API; downloads use `download_session` (see
        `open_download_session`), never `session`. Without one, the archive opens its own at
        the first download, closed by `close()`."""
        if download_session is not None and download_session is session:
            raise ValueError("downloads must not share the API's session")
        self.session = session
        self.download_session = download_session
        self._own_download_session = download_session is None
        self.root = URL(root if root.endswith("/") else root + "/")
        self.metadata_timeout = metadata_timeout
        self.list_timeout = list_timeout
        self.download_timeout = download_timeout
        self.max_download_bytes = max_download_bytes
        self.max_answer_bytes = max_answer_bytes

    async def close(self) -> None:
        """Close the download session this archive opened itself, if any."""
        if self._own_download_session and self.download_session is not None:
            await self.download_session.close()
            self.download_session = None

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame:
        url = self.root / "frames" / str(frame_id) / ""
        async with _bounded(self.metadata_timeout):
            try:
                body = await self._get_json(url, authorization)
            except FrameNotFound:
                raise FrameNotFound(f"Frame {frame_id} not found") from None
        frame = _read(_frame, body, url)
        if frame.id != frame_id:
            _mismatch(url, asked=frame_id, answered=frame.id)
        return frame

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]:
        url = (self.root / "frames" / "").with_query(basename_exact=basename)
        async with _bounded(self.metadata_timeout):
            page = await self._get_json(url, authorization)
        frames, _ = _read(_page, page, url)
        for frame in frames:
            if frame.basename != basename:
                _mismatch(url, asked=basename, answered=frame.basename)
        return frames

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        url: URL | None = (self.root / "frames" / "").with_query(
            request_id=str(observing_request_id), reduction_level=str(reduction_level), limit="1000"
        )
        frames: list[Frame] = []
        pages = 0
        # One bound for the whole listing, however many pages it takes.
        async with _bounded(self.list_timeout):
            while url is not None and pages < MAX_PAGES:
                asked = url
                page = await self._get_json(asked, authorization)
                found, url = _read(_page, page, asked)
                for frame in found:
                    if frame.observing_request_id != observing_request_id:
                        _mismatch(
                            asked, asked=observing_request_id, answered=frame.observing_request_id
                        )
                frames.extend(found)
                pages += 1
        return frames

    async def download(self, frame: Frame, destination: Path) -> int:
        if not frame.url:
            raise ArchiveUnavailable(f"Frame {frame.id} has no download url")
        name = frame.filename or str(frame.id)
        try:
            url = self._file_url(frame.url)
        except _Unreadable as err:
            log.warning("archive_answer_unreadable", frame=frame.id, detail=err.detail)
            raise ArchiveUnavailable(UNREADABLE) from None
        session = await self._downloads()
        timeout = aiohttp.ClientTimeout(total=self.download_timeout, sock_connect=10)
        written = 0
        try:
            async with (
                asyncio.timeout(self.download_timeout),
                session.get(url, timeout=timeout) as response,
            ):
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
        patience = min(self.metadata_timeout, 5.0)
        timeout = aiohttp.ClientTimeout(total=patience)
        try:
            async with (
                asyncio.timeout(patience),
                self.session.get(url, timeout=timeout) as response,
            ):
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

    def _file_url(self, text: str) -> URL:
        # encoded=True: a presigned URL must be used exactly as given.
        url = _url(text)
        return url if url.is_absolute() else self.root.join(url)

    async def _downloads(self) -> aiohttp.ClientSession:
        if self.download_session is None:
            self.download_session = await open_download_session()
        return self.download_session

    async def _get_json(self, url: URL, authorization: str | None) -> Any:
        """The parsed answer of a 200; a domain error for anything else. The caller bounds
        the time (`_bounded`): the whole call, not each of its steps."""
        try:
            async with self.session.get(url, headers=self._headers(url, authorization)) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After", "")
                body = await self._read_answer(response, url)
        except TimeoutError:
            raise
        except aiohttp.ClientError as err:
            log.warning("archive_unreachable", error=_describe(err))
            raise ArchiveUnavailable("The archive cannot be reached") from None
        if status == 200:
            if body is None:
                log.warning("archive_answer_unreadable", url=str(url), detail="not JSON")
                raise ArchiveUnavailable(f"{UNREADABLE}: not JSON")
            return body
        if status == 404:
            raise FrameNotFound("Frame not found")
        if 400 <= status < 500:
            detail = body.get("detail") if isinstance(body, Mapping) else None
            raise ArchiveRefused(
                f"The archive refused the request ({status}): {detail or 'no detail given'}",
                status,
                body,
                _retry_after(retry_after),
            )
        raise ArchiveUnavailable(f"The archive answered {status}")

    async def _read_answer(self, response: aiohttp.ClientResponse, url: URL) -> Any:
        """The body as JSON (None if it is not JSON), read up to `max_answer_bytes`."""
        limit = self.max_answer_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            _too_large(url, declared, limit)
        pieces: list[bytes] = []
        size = 0
        async for piece in response.content.iter_any():
            size += len(piece)
            if size > limit:
                _too_large(url, size, limit)
            pieces.append(piece)
        body = b"".join(pieces)
        if size > PARSE_OFF_LOOP_BYTES:
            return await asyncio.to_thread(_json_or_none, body, yielding=True)
        return _json_or_none(body)


@contextlib.asynccontextmanager
async def _bounded(seconds: float) -> AsyncIterator[None]:
    """One time limit for a whole call: connecting, waiting, reading, every page."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise ArchiveTimeout(f"The archive did not answer within {seconds:g} s") from None


def _read(parse: Callable[[Any], T], answer: Any, url: URL) -> T:
    try:
        return parse(answer)
    except _Unreadable as err:
        log.warning("archive_answer_unreadable", url=str(url), detail=err.detail)
        raise ArchiveUnavailable(UNREADABLE) from None


def _mismatch(url: URL, *, asked: object, answered: object) -> NoReturn:
    log.error("archive_answer_mismatch", url=str(url), asked=asked, answered=answered)
    raise ArchiveUnavailable(MISMATCH)


def _too_large(url: URL, size: int, limit: int) -> NoReturn:
    log.warning("archive_answer_too_large", url=str(url), size=size, limit=limit)
    raise ArchiveUnavailable(f"{UNREADABLE}: an answer larger than {limit} bytes")


def _page(page: Any) -> tuple[list[Frame], URL | None]:
    """A list answer's frames and its `next` link."""
    if not isinstance(page, dict):
        raise _Unreadable(f"a list answer that is a {type(page).__name__}")
    results = page.get("results")
    if not isinstance(results, list):
        raise _Unreadable("a list answer without a list of results")
    following = page.get("next")
    if following is None or following == "":
        link = None
    elif isinstance(following, str):
        link = _url(following)
        if not link.is_absolute():
            raise _Unreadable(f"a next link that is not absolute: {following!r}")
    else:
        raise _Unreadable(f"a next link that is a {type(following).__name__}")
    return [_frame(record) for record in results], link


def _frame(record: Any) -> Frame:
    """A frame from a record of the archive, checked for the types its API gives."""
    if not isinstance(record, dict):
        raise _Unreadable(f"a record that is a {type(record).__name__}")
    frame_id = record.get("id")
    if (
        not isinstance(frame_id, int)
        or isinstance(frame_id, bool)
        or not 0 < frame_id <= MAX_FRAME_ID
    ):
        raise _Unreadable(f"a record id of {str(frame_id)[:40]!r}")
    for key in STRING_KEYS:
        if not isinstance(record.get(key), str | None):
            raise _Unreadable(f"a record whose {key} is a {type(record[key]).__name__}")
    for key in INTEGER_KEYS:
        value = record.get(key)
        if value is not None and not _is_int(value) and not _is_digits(value):
            raise _Unreadable(f"a record whose {key} is {str(value)[:40]!r}")
    url = record.get("url")
    if url:
        _url(url)
    return Frame.from_record(record)


def _url(text: str) -> URL:
    """An http(s) URL (absolute, or relative to the archive) that can be requested."""
    try:
        url = URL(text, encoded=True)
        url.port  # noqa: B018 - yarl checks the port when it is read
    except (ValueError, TypeError):
        raise _Unreadable(f"a malformed URL {text[:80]!r}") from None
    if url.is_absolute() and (url.scheme not in ("http", "https") or not url.host):
        raise _Unreadable(f"a URL that is not http(s): {text[:80]!r}")
    return url


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_digits(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20


def _retry_after(text: str) -> int | None:
    """An archive's Retry-After in seconds, clamped to RETRY_AFTER_RANGE (None: none given)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    low, high = RETRY_AFTER_RANGE
    return max(low, min(high, int(text[:12])))


def _json_or_none(body: bytes, *, yielding: bool = False) -> Any:
    """The JSON document, or None. `yielding` (in a thread): json's C parser holds the GIL
    from start to end, so a thread of it stalls the event loop as much as parsing on it; a
    Python-level hook once per object lets the loop run in between, at about twice the parse
    time, off the loop (benchmarks/archive_parse.py)."""
    try:
        return json.loads(body, object_pairs_hook=_object if yielding else None)
    except (ValueError, RecursionError):
        return None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(pairs)


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def open_session(limit: int = 100) -> aiohttp.ClientSession:
    """The session of the archive's API (closed by the caller at shutdown)."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, raise_for_status=False)


async def open_download_session(limit: int = 100) -> aiohttp.ClientSession:
    """The session of file downloads (closed by the caller at shutdown): its connections are
    never reused, so nothing a file server leaves after a body is ever read as an answer."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, force_close=True)
    return aiohttp.ClientSession(connector=connector, raise_for_status=False)
