"""A misbehaving archive: raw HTTP/1.1 over asyncio streams, so it can break the protocol.

It serves `/frames/{id}/`, `/frames/?basename_exact=...`, `/frames/?request_id=...` and
`/files/{id}/{filename}` honestly (private records only to `OWNER`) until told otherwise with
`on(path_prefix, behaviour)`: answer with something else (`Raw`, `Record`), append a complete
extra response after the answer (`Smuggle`), never answer (`Stall`), answer a byte at a time
(`Trickle`) or without end (`Flood`). Connections are kept alive, as a real server's are, so a
client's pool reuses them; every request is recorded with the connection it came on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

OWNER = "Token hostile-owner-token"
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many"}


@dataclass(frozen=True)
class Seen:
    """One request as the archive received it."""

    path: str  # with the query
    authorization: str | None
    connection: int


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        lines = [
            f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Whatever')}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_answer(document: Any, status: int = 200, **headers: str) -> Answer:
    return Answer(status, json.dumps(document).encode(), headers=dict(headers))


class Behaviour:
    """How to answer one request, given the honest answer; return False to close the
    connection afterwards."""

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(honest.encode())
        await writer.drain()
        return True


@dataclass
class Raw(Behaviour):
    """This answer instead of the honest one: a body as given (bytes are sent as they are)."""

    body: bytes | str | Any
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        body = self.body
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        writer.write(Answer(self.status, body, self.content_type, self.headers).encode())
        await writer.drain()
        return True


@dataclass
class Record(Behaviour):
    """Another record (another frame's, say) in place of the one asked for."""

    frame_id: int

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(json_answer(archive.record(self.frame_id)).encode())
        await writer.drain()
        return True


@dataclass
class Smuggle(Behaviour):
    """The honest answer, then a complete extra response on the same connection that nobody
    asked for: frame `frame_id`'s record (a private one, say).

    The extra response is what a desynchronised server or proxy leaves on a kept-alive
    connection. It arrives after the client has put the connection back in its pool: it is
    sent as the next request comes in on that connection, just ahead of that request's answer,
    which stays queued in turn (so the connection never recovers by itself).
    """

    frame_id: int

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(honest.encode())
        await writer.drain()
        archive.pending[writer] = json_answer(archive.record(self.frame_id)).encode()
        archive.smuggled += 1
        return True


class Stall(Behaviour):
    """Read the request, then say nothing until `release()` (or the client gives up)."""

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        archive.stalled += 1
        archive.changed.set()
        try:
            await archive.released.wait()
        finally:
            archive.stalled -= 1
            archive.changed.set()
        writer.write(honest.encode())
        await writer.drain()
        return True


@dataclass
class Trickle(Behaviour):
    """The honest answer (or `document` as JSON), `size` bytes every `interval` seconds."""

    interval: float = 0.2
    size: int = 1
    document: Any = None

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        data = (honest if self.document is None else json_answer(self.document)).encode()
        for start in range(0, len(data), self.size):
            writer.write(data[start : start + self.size])
            await writer.drain()
            await asyncio.sleep(self.interval)
        return True


@dataclass
class Flood(Behaviour):
    """A 200 whose body never ends (`chunked`) or is announced as `length` bytes and sent in
    full: a JSON array that goes on and on."""

    length: int | None = None

    async def answer(
        self, archive: HostileArchive, honest: Answer, writer: asyncio.StreamWriter
    ) -> bool:
        piece = b"[" * 1 + b"1," * 32767
        if self.length is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n" % self.length)
            left = self.length
            while left > 0:
                chunk = piece[: min(left, len(piece))]
                writer.write(chunk)
                left -= len(chunk)
                await writer.drain()
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        while True:  # until the client hangs up
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            archive.flooded += len(piece)


class HostileArchive:
    """See the module docstring. Start with `running_hostile_archive()`."""

    def __init__(self) -> None:
        self.records: dict[int, dict[str, Any]] = {}
        self.files: dict[int, bytes] = {}
        self.private: set[int] = set()
        self.seen: list[Seen] = []
        self.rules: list[tuple[str, Behaviour, list[int | None]]] = []
        self.stalled = 0
        self.smuggled = 0
        self.flooded = 0
        self.pending: dict[asyncio.StreamWriter, bytes] = {}  # sent before the next answer
        self.released = asyncio.Event()
        self.changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.root = ""

    # The archive's content
    def add_frame(self, record: dict[str, Any], data: bytes, *, private: bool = False) -> None:
        frame_id = int(record["id"])
        self.records[frame_id] = dict(record)
        self.files[frame_id] = data
        if private:
            self.private.add(frame_id)

    def record(self, frame_id: int) -> dict[str, Any]:
        record = dict(self.records[frame_id])
        record["url"] = f"{self.root}files/{frame_id}/{record.get('filename') or frame_id}"
        return record

    # Misbehaviour
    def on(self, path_prefix: str, behaviour: Behaviour, times: int | None = None) -> None:
        """Answer requests whose path (with query) starts with `path_prefix` that way, the next
        `times` times (None: always). The latest rule that matches wins."""
        self.rules.insert(0, (path_prefix, behaviour, [times]))

    def release(self) -> None:
        """Let every stalled request (and every later one) be answered."""
        self.released.set()

    async def wait_until(self, condition: Any) -> None:
        """Wait for `condition()` to hold (re-checked whenever the archive's state changes);
        a test that waits in vain fails after 30 s rather than hanging."""
        async with asyncio.timeout(30):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    # Honest answers
    def _visible(self, frame_id: int, authorization: str | None) -> bool:
        return frame_id not in self.private or authorization == OWNER

    def honest(self, path: str, authorization: str | None) -> Answer:
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        if authorization not in (None, OWNER):
            return json_answer({"detail": "Invalid token."}, 401)
        if segments == ["frames"]:
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            found = [
                self.record(i)
                for i in self.records
                if self._visible(i, authorization) and _matches(self.records[i], query)
            ]
            return json_answer({"count": len(found), "next": None, "results": found})
        if len(segments) == 2 and segments[0] == "frames" and segments[1].isdigit():
            frame_id = int(segments[1])
            if frame_id in self.records and self._visible(frame_id, authorization):
                return json_answer(self.record(frame_id))
            return json_answer({"detail": "Not found."}, 404)
        if len(segments) == 3 and segments[0] == "files" and segments[1].isdigit():
            data = self.files.get(int(segments[1]))
            if data is not None:
                return Answer(200, data, "application/octet-stream")
        return json_answer({"detail": "Not found."}, 404)

    def _behaviour(self, path: str) -> Behaviour:
        for prefix, behaviour, times in self.rules:
            if path.startswith(prefix) and times[0] != 0:
                if times[0] is not None:
                    times[0] -= 1
                return behaviour
        return Behaviour()

    # The server
    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.root = f"http://{host}:{port}/"
        return self.root

    async def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections += 1
        connection = self._connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                _, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                authorization = headers.get("authorization")
                self.seen.append(Seen(path, authorization, connection))
                self.changed.set()
                honest = self.honest(path, authorization)
                if writer in self.pending:
                    # The answer this connection still owes goes first: the next one waits.
                    writer.write(self.pending.pop(writer))
                    self.pending[writer] = honest.encode()
                    await writer.drain()
                    continue
                if not await self._behaviour(path).answer(self, honest, writer):
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            self.pending.pop(writer, None)
            with contextlib.suppress(Exception):
                writer.close()


def _matches(record: dict[str, Any], query: dict[str, str]) -> bool:
    keys = {"basename_exact": "basename", "request_id": "request_id"}
    keys["reduction_level"] = "reduction_level"
    return all(str(record.get(keys[k])) == v for k, v in query.items() if k in keys)


@asynccontextmanager
async def running_hostile_archive() -> AsyncIterator[HostileArchive]:
    archive = HostileArchive()
    await archive.start()
    try:
        yield archive
    finally:
        await archive.stop()
