"""A stand-in of the OCS Science Archive over real HTTP, for integration and end-to-end tests.

Like the real one (shared/reference/archive-api.md): hidden frames look missing, unknown tokens
get 401, lists paginate with absolute links, and file URLs act as presigned S3 URLs (signed query;
400 if an Authorization header comes along). Faults are injectable and every call is recorded.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from thumbservice.adapters.archive.dev.permissions import (
    ProposalPermissions,
    UnknownToken,
    is_public,
)
from thumbservice.domain.spec import is_ascii_digits

PAST = "2020-03-21T10:11:12.345000Z"
FUTURE = "2099-01-01T00:00:00Z"
MAX_LIMIT = 1000
FILTERS: dict[str, tuple[str, type]] = {  # query parameter -> (record key, type)
    "basename_exact": ("basename", str),
    "request_id": ("request_id", int),
    "reduction_level": ("reduction_level", int),
}
DRF_DETAILS = {
    401: "Invalid token.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    429: "Request was throttled. Expected available in 5 seconds.",
}
ONE_AUTH_ONLY = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query"
    " string parameter or the Authorization header should be specified"
)
BAD_SIGNATURE = "The request signature we calculated does not match the signature you provided."
S3_CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError", 503: "SlowDown"}


@dataclass
class Fault:
    """A failure to inject; parts combine. `delay` waits before answering; `status` answers
    with it (DRF JSON for 4xx, HTML for 5xx, S3 XML for files); `reset` drops the connection.
    Files only: `truncate` sends half the announced body then drops, `corrupt` flips every byte,
    `stall` pauses halfway through the body, `hold` too, until the event is set (a download
    demonstrably under way for as long as the test needs). `times`: requests hit before it
    stops (None: all).
    """

    status: int | None = None
    delay: float = 0.0
    reset: bool = False
    truncate: bool = False
    corrupt: bool = False
    stall: float = 0.0
    hold: asyncio.Event | None = None
    times: int | None = None

    def take(self) -> bool:
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True


def _signature(frame_id: int, filename: str) -> str:
    return hashlib.sha256(f"stub/{frame_id}/{filename}".encode()).hexdigest()


def _drf_error(status: int) -> web.Response:
    if status >= 500:
        html = f"<html><body><h1>Server Error ({status})</h1></body></html>"
        return web.Response(status=status, text=html, content_type="text/html")
    headers = {401: {"WWW-Authenticate": "Token"}, 429: {"Retry-After": "5"}}.get(status, {})
    detail = DRF_DETAILS.get(status, "Bad request.")
    return web.json_response({"detail": detail}, status=status, headers=headers)


def _s3_error(status: int, code: str | None = None, message: str = "") -> web.Response:
    code = code or S3_CODES.get(status, "InternalError")
    xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message or code}</Message>"
    xml += "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    return web.Response(status=status, text=xml, content_type="application/xml")


def _reset(request: web.Request) -> web.Response:
    """Drop the connection: the client sees a disconnect, never a status."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


class ArchiveStub:
    """The archive's HTTP API over registered records; see the module docstring."""

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = Path(files_dir)
        self.tokens: dict[str, set[str]] = {"Token sample-owner-token": {"LCO2026B-999"}}
        self.permissions = ProposalPermissions(self.tokens)
        self.downloads: Counter[int] = Counter()
        self.lookups: list[tuple[str, str | None]] = []
        self.download_auth_headers: list[str | None] = []
        self.fault: Fault | None = None
        self.file_fault: Fault | None = None
        self.page_size = 100
        self.max_limit = MAX_LIMIT  # the largest `limit` the server honours
        self._records: dict[int, dict[str, Any]] = {}
        self._files: dict[int, Path] = {}
        self._runner: web.AppRunner | None = None
        self._root: str | None = None

    @property
    def root(self) -> str:
        if self._root is None:
            raise RuntimeError("ArchiveStub is not started")
        return self._root

    def add_frame(self, record: dict, path: Path | None, *, public: bool = True) -> dict:
        """Register a record, served with the file at `path` (relative to files_dir, or absolute);
        `public` moves public_date to the past or the future. Returns the record as served."""
        record = copy.deepcopy(record)
        frame_id = int(record["id"])
        if public != is_public(record):
            record["public_date"] = PAST if public else FUTURE
        self._records[frame_id] = record
        self._files.pop(frame_id, None)
        if path is not None:
            self._files[frame_id] = self.files_dir / path  # an absolute path stays as it is
        return self._render(record)

    def file_url(self, frame_id: int) -> str:
        """The presigned-looking URL of a registered file, as served in records."""
        filename = self._files[frame_id].name
        query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature="
        return f"{self.root}files/{frame_id}/{filename}?{query}{_signature(frame_id, filename)}"

    def _render(self, record: dict[str, Any]) -> dict[str, Any]:
        record = copy.deepcopy(record)
        if record["id"] in self._files and self._root is not None:
            record["url"] = self.file_url(record["id"])
        return record

    async def _caller_records(self, request: web.Request) -> web.Response | list[dict[str, Any]]:
        """Log the call and apply any fault; then the records this caller may see, or a 401."""
        auth = request.headers.get("Authorization")
        self.lookups.append((request.path_qs, auth))
        fault = self.fault
        if fault is not None and fault.take():
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.reset:
                return _reset(request)
            if fault.status:
                return _drf_error(fault.status)
        try:  # DRF authenticates before it looks anything up
            return [dict(r) for r in self.permissions.visible(self._records.values(), auth)]
        except UnknownToken:
            return _drf_error(401)

    async def _detail(self, request: web.Request) -> web.Response:
        visible = await self._caller_records(request)
        if isinstance(visible, web.Response):
            return visible
        for record in visible:
            if str(record["id"]) == request.match_info["id"]:
                return web.json_response(self._render(record))
        return _drf_error(404)

    async def _list(self, request: web.Request) -> web.Response:
        visible = await self._caller_records(request)
        if isinstance(visible, web.Response):
            return visible
        query = request.query
        for param, (key, kind) in FILTERS.items():
            if param in query:
                try:
                    wanted = kind(query[param])
                except ValueError:
                    return web.json_response({param: ["Enter a number."]}, status=400)
                visible = [r for r in visible if r.get(key) == wanted]
        return web.json_response(self._page(request, visible))

    def _page(self, request: web.Request, records: list[dict[str, Any]]) -> dict[str, Any]:
        """DRF LimitOffsetPagination: absolute links, `offset` dropped on the first page."""

        def number(name: str, default: int) -> int:
            text = request.query.get(name, "")
            return int(text) if is_ascii_digits(text) else default

        limit = min(number("limit", self.page_size) or self.page_size, self.max_limit)
        offset = number("offset", 0)
        url = request.url.update_query(limit=limit)
        following = None
        if offset + limit < len(records):
            following = str(url.update_query(offset=offset + limit))
        previous = None
        if offset > 0:
            first = url.with_query({k: v for k, v in url.query.items() if k != "offset"})
            earlier = url.update_query(offset=offset - limit)
            previous = str(first if offset - limit <= 0 else earlier)
        page = [self._render(r) for r in records[offset : offset + limit]]
        return {"count": len(records), "next": following, "previous": previous, "results": page}

    async def _file(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        self.download_auth_headers.append(auth)
        if auth is not None:
            return _s3_error(400, "InvalidArgument", ONE_AUTH_ONLY)
        raw_id, filename = request.match_info["id"], request.match_info["filename"]
        path = self._files.get(int(raw_id)) if is_ascii_digits(raw_id) else None
        if path is None or path.name != filename or not path.is_file():
            return _s3_error(404, message="The specified key does not exist.")
        frame_id = int(raw_id)
        if request.query.get("X-Amz-Signature") != _signature(frame_id, filename):
            return _s3_error(403, "SignatureDoesNotMatch", BAD_SIGNATURE)
        fault = self.file_fault if self.file_fault and self.file_fault.take() else Fault()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.reset:
            return _reset(request)
        if fault.status:
            return _s3_error(fault.status)
        data = await asyncio.to_thread(path.read_bytes)
        if fault.corrupt:
            data = data.translate(bytes(b ^ 0xFF for b in range(256)))
        self.downloads[frame_id] += 1
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        await asyncio.sleep(fault.stall)
        if fault.hold is not None:
            await fault.hold.wait()
        if fault.truncate:
            _reset(request)
            return response
        await response.write(data[len(data) // 2 :])
        await response.write_eof()
        return response

    async def start(self) -> str:
        """Listen on 127.0.0.1 on a free port; return the root URL (ending with /)."""
        app = web.Application()
        app.router.add_get("/frames/", self._list)
        app.router.add_get("/frames/{id}/", self._detail)
        app.router.add_get("/files/{id}/{filename}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._root = f"http://{host}:{port}/"
        return self._root

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def running_archive(files_dir: Path) -> AsyncIterator[ArchiveStub]:
    """A started ArchiveStub, stopped on exit."""
    stub = ArchiveStub(files_dir)
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()
