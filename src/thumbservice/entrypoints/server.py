"""Serving the app: aiohttp's runner, with requests its HTTP parser refuses answered in JSON.

A request line over 32 KB or a header over 8 KB, an invalid method, Transfer-Encoding with
Content-Length: aiohttp refuses these before any middleware runs, and its default answer is
`text/plain` echoing part of the request, with an error-level log line each. Those are the
client's mistakes, so here they get the same JSON error body as every other answer, and an
info-level log line.
"""

from __future__ import annotations

import asyncio
import signal
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = structlog.get_logger("thumbservice.http")

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
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose connections answer parser refusals in JSON (see the module doc) and
    take request lines of up to `MAX_REQUEST_LINE` bytes."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_REQUEST_LINE)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _JsonErrorServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


async def serve_until_signalled(
    app: web.Application, host: str, port: int, shutdown_timeout: float, **runner_args: Any
) -> None:
    """Serve until SIGINT or SIGTERM; then stop accepting, finish in-flight requests (for at
    most `shutdown_timeout` seconds) and run the app's cleanup."""
    runner = Runner(app, access_log=None, shutdown_timeout=shutdown_timeout, **runner_args)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
