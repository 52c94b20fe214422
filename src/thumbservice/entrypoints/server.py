"""Serving the app: aiohttp's runner, with its connections kept on a short leash.

A request line over 32 KB or a header over 8 KB, an invalid method, Transfer-Encoding with
Content-Length: aiohttp refuses these before any middleware runs, and its default answer is
`text/plain` echoing part of the request, with an error-level log line each. Those are the
client's mistakes, so here they get the same JSON error body as every other answer, and an
info-level log line.

Each connection also answers to `ConnectionLimits`, so idle, half-open and slow clients cannot
exhaust the process (file descriptors, memory):

- **Head**: a new connection must have sent a whole request head within `header_timeout`, or
  it is closed (slowloris, half-open connections). Between requests, an idle keep-alive
  connection is closed after `keepalive_timeout` (aiohttp's own, an hour unless given).
- **Cap**: at most `max_connections` are open. One over the cap closes the connection that has
  waited longest for a request head, if one is idle; otherwise its request is answered with a
  JSON 503 and `Retry-After`, and it is closed. Accepting never fails for want of descriptors
  while the cap is below the process's file limit: the listening socket's backlog is at most
  the cap (`accept_backlog`), because the event loop accepts up to a backlog's worth of
  waiting connections at once, before the cap can close any of them.
- **Slow readers**: answers are written in `WRITE_CHUNK` pieces, each once the transport's
  buffer (at most `WRITE_BUFFER_HIGH` bytes) has room, so at most about `WRITE_BUFFER_HIGH +
  WRITE_CHUNK` bytes are queued for a client whatever the answer's size; a client that reads
  nothing for `send_timeout` seconds is disconnected and its queued bytes dropped.
"""

from __future__ import annotations

import asyncio
import resource
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

import structlog
from aiohttp import payload, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from thumbservice.entrypoints.headers import harden

log = structlog.get_logger("thumbservice.http")

WRITE_CHUNK = 64 * 1024
WRITE_BUFFER_HIGH = 128 * 1024
"""Bytes queued in a connection's transport before writing pauses (see the module doc)."""

MAX_AUTO_CONNECTIONS = 4096
RESERVED_DESCRIPTORS = 64


def default_max_connections() -> int:
    """Half the process's soft limit on open files (the other half is for the store's and the
    archive's connections, scratch files, render workers and connections over the cap), at
    least 16 and at most 4,096."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_AUTO_CONNECTIONS
    return max(16, min(MAX_AUTO_CONNECTIONS, (soft - RESERVED_DESCRIPTORS) // 2))


MAX_BACKLOG = 128
"""aiohttp's own listen backlog: the most connections waiting to be accepted."""


def accept_backlog(cap: int) -> int:
    """The listen backlog under a connection cap: asyncio accepts up to the backlog's number of
    waiting connections in one go, and only then can the cap close the idle ones, so at most
    `cap` open plus `backlog` just accepted may be held for a moment. With the backlog at most
    the cap, that is within the half of the file limit `default_max_connections` leaves."""
    return max(1, min(MAX_BACKLOG, cap))


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a connection may stay silent or unread, and how many may be open."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    send_timeout: float = 30.0
    max_connections: int | None = None  # None: `default_max_connections()`
    on_close: Callable[[str], None] | None = None
    """Told why the service closed or refused a connection: header_timeout, send_timeout,
    evicted (idle, to make room), over_capacity (answered 503)."""

    def cap(self) -> int:
        return self.max_connections or default_max_connections()


CONNECTION_LIMITS = web.AppKey("connection_limits", ConnectionLimits)
"""The app's limits (`create_app` sets them from the settings); the defaults when absent."""

REQUEST_SHARE = 0.75
"""Of SHUTDOWN_TIMEOUT, the share requests under way have to finish (the rest: uploads)."""
ANSWER_GRACE = 1.0
"""Seconds a request answered 503 at the cut has to write its answer."""


class Stopping:
    """The stop of the process, in order, within `patience` seconds (SHUTDOWN_TIMEOUT):

    1. stop accepting connections, close the idle ones;
    2. let the requests under way finish for `REQUEST_SHARE` of the time; the ones still
       running then are answered 503 (`cut`), never left without an answer;
    3. the app's cleanup: the use case's work under way (renders, uploads, their leases)
       gets what is `remaining()`, then the clients (store, archive) close.
    """

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self.cut = False
        self._started: float | None = None
        self._requests: set[asyncio.Task[Any]] = set()

    @property
    def request_patience(self) -> float:
        return self.patience * REQUEST_SHARE

    def begin(self) -> None:
        self._started = asyncio.get_running_loop().time()

    def remaining(self) -> float:
        if self._started is None:
            return self.patience
        return max(0.0, self.patience - (asyncio.get_running_loop().time() - self._started))

    def track(self, task: asyncio.Task[Any]) -> None:
        self._requests.add(task)

    def untrack(self, task: asyncio.Task[Any]) -> None:
        self._requests.discard(task)

    def cut_requests(self) -> None:
        """Time is up for requests: each still running is cancelled and answers 503."""
        self.cut = True
        if self._requests:
            log.warning("requests_cut_at_shutdown", count=len(self._requests))
        for task in self._requests:
            task.cancel()


STOPPING = web.AppKey("stopping", Stopping)

CORS_ORIGIN = {"Access-Control-Allow-Origin": "*"}

MAX_REQUEST_LINE = 32 * 1024
"""Bytes of the request line. aiohttp's 8 KB would refuse a label of 2,048 characters written
in most scripts (a character percent-encodes to up to 12 bytes); this takes any of them, with
room for the other parameters. Header lines keep aiohttp's 8 KB."""


def _public_message(status: int, exc: BaseException | None) -> str:
    """What was wrong, in plain words, never echoing the request itself."""
    if isinstance(exc, LineTooLong):
        return (
            f"The request line or a header is too long (the limits are "
            f"{MAX_REQUEST_LINE // 1024} KB and 8 KB)"
        )
    if isinstance(exc, BadHttpMethod):
        return "The request's method is not a valid HTTP method"
    if isinstance(exc, BadHttpMessage):
        return "The request is not valid HTTP/1.1"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "The request could not be handled"


class _JsonErrorHandler(RequestHandler):
    """One connection: JSON answers to what the parser refuses, and the limits of the module
    doc (it reads aiohttp's own state of the connection, pinned by uv.lock)."""

    def __init__(self, manager: _JsonErrorServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = manager.limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None

    @property
    def waiting_for_head(self) -> bool:
        """Idle: no request being handled and none waiting (before the first, or between)."""
        waiter = self._waiter
        return (
            waiter is not None
            and not waiter.done()
            and not self._messages
            and not self._request_in_progress
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        cast(asyncio.WriteTransport, transport).set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self._head_timer = self._loop.call_later(self._limits.header_timeout, self._head_late)
        manager = cast(_JsonErrorServer, self._manager)
        if len(manager.connections) > manager.cap and not manager.evict_idle(self):
            self._request_handler = self._refuse

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._send_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self._request_count:
            self._head_timer.cancel()
            self._head_timer = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self._loop.call_later(self._limits.send_timeout, self._unread)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def close_for(self, reason: str) -> None:
        """Close the connection now, dropping what is queued for it."""
        log.info("connection_closed", reason=reason, remote=self._remote())
        if self._limits.on_close is not None:
            self._limits.on_close(reason)
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()

    def _head_late(self) -> None:
        self._head_timer = None
        if not self._request_count and self.transport is not None:
            self.close_for("header_timeout")

    def _unread(self) -> None:
        self._send_timer = None
        if self.transport is not None:
            self.close_for("send_timeout")

    def _remote(self) -> str | None:
        peer = self.peername
        return str(peer[0]) if isinstance(peer, tuple) else None

    async def _refuse(self, request: BaseRequest) -> web.StreamResponse:
        if self._limits.on_close is not None:
            self._limits.on_close("over_capacity")
        log.warning("connection_refused", reason="over_capacity", remote=request.remote)
        response = web.json_response(
            {"message": "The service has too many open connections; retry in a few seconds"},
            status=503,
            headers={**CORS_ORIGIN, "Retry-After": "1"},
        )
        harden(response.headers, response.content_type)
        response.force_close()
        return response

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of an answer went out already: the connection can only be dropped.
            raise ConnectionError("Response is sent already, cannot send an error")
        level = log.info if status < 500 else log.error
        level(
            "request_refused",
            status=status,
            error=type(exc).__name__ if exc is not None else None,
            remote=request.remote,
        )
        response = web.json_response(
            {"message": _public_message(status, exc)}, status=status, headers=CORS_ORIGIN
        )
        harden(response.headers, response.content_type)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.cap = limits.cap()

    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)

    def evict_idle(self, newcomer: RequestHandler) -> bool:
        """Close the connection that has waited longest for a request head (the oldest idle
        one), to make room for `newcomer`; False if every other connection is busy."""
        for connection in self.connections:
            if (
                connection is not newcomer
                and isinstance(connection, _JsonErrorHandler)
                and connection.waiting_for_head
            ):
                connection.close_for("evicted")
                return True
        return False


class _PacedBytes(payload.BytesPayload):
    """An answer's body written `WRITE_CHUNK` bytes at a time, each once the transport has
    room: a client that reads slowly holds a bounded buffer, not a copy of the whole body."""

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = memoryview(self._value)
        if content_length is not None:
            view = view[:content_length]
        for start in range(0, len(view), WRITE_CHUNK):
            await writer.write(view[start : start + WRITE_CHUNK])
            await writer.drain()


async def pace_large_bodies(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: a body over `WRITE_CHUNK` bytes is written paced (`_PacedBytes`)."""
    if isinstance(response, web.Response):
        body = response.body
        if isinstance(body, bytes) and len(body) > WRITE_CHUNK:
            response.body = _PacedBytes(body, content_type=response.content_type)


class Runner(web.AppRunner):
    """An AppRunner whose connections answer parser refusals in JSON (see the module doc) and
    take request lines of up to `MAX_REQUEST_LINE` bytes."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_REQUEST_LINE)
        super().__init__(app, **kwargs)

    async def cleanup(self) -> None:
        stopping = self._app.get(STOPPING)
        if stopping is None or self.server is None:
            await super().cleanup()
            return
        stopping.begin()
        log.info("stopping", patience=stopping.patience)
        self._shutdown_timeout = stopping.request_patience + ANSWER_GRACE
        cut = asyncio.get_running_loop().call_later(
            stopping.request_patience, stopping.cut_requests
        )
        try:
            await super().cleanup()
        finally:
            cut.cancel()

    async def _make_server(self) -> web.Server:
        limits = self._app.get(CONNECTION_LIMITS) or ConnectionLimits()
        self._kwargs.setdefault("keepalive_timeout", limits.keepalive_timeout)
        made = await super()._make_server()
        return _JsonErrorServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            limits=limits,
            **made._kwargs,
        )


async def serve_until_signalled(
    app: web.Application,
    host: str,
    port: int,
    shutdown_timeout: float,
    side_apps: Sequence[tuple[web.Application, int]] = (),
    **runner_args: Any,
) -> None:
    """Serve until SIGINT or SIGTERM; then stop in order (`Stopping`) within
    `shutdown_timeout` seconds. `side_apps` are served on ports of their own (/metrics) and
    stopped after the main app."""
    runner = Runner(app, access_log=None, shutdown_timeout=shutdown_timeout, **runner_args)
    await runner.setup()
    sides = [(Runner(side, access_log=None, shutdown_timeout=1.0), at) for side, at in side_apps]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    limits = app.get(CONNECTION_LIMITS) or ConnectionLimits()
    try:
        await web.TCPSite(runner, host, port, backlog=accept_backlog(limits.cap())).start()
        for side_runner, side_port in sides:
            await side_runner.setup()
            await web.TCPSite(side_runner, host, side_port).start()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        for side_runner, _ in sides:
            await side_runner.cleanup()
