"""Middlewares: request id and the request log line, CORS, and errors turned into JSON."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from thumbservice.domain import errors
from thumbservice.entrypoints.server import Stopping

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestMetrics(Protocol):
    def observe_request(self, route: str, status: int, seconds: float) -> None: ...


log = structlog.get_logger("thumbservice.http")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, X-Request-ID, Retry-After, Content-Length",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Max-Age": "86400",
}
ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID, If-None-Match, X-Requested-With"
"""The request headers a page of another origin may send: a fixed list, never what a preflight
asked for (which would reflect whatever a caller wrote)."""

STATUS: list[tuple[type[errors.ThumbnailError], int]] = [
    (errors.InvalidParameter, 400),
    (errors.FrameNotEligible, 400),
    (errors.FrameNotFound, 404),
    (errors.ArchiveUnavailable, 502),
    (errors.ArchiveTimeout, 504),
    (errors.FrameTooLarge, 422),
    (errors.UnreadableFrame, 422),
    (errors.RenderFailed, 503),
    (errors.Overloaded, 503),
    (errors.StoreUnavailable, 503),
    (errors.ScratchSpaceFull, 503),
    (errors.DeadlineExceeded, 504),
]


def status_of(error: errors.ThumbnailError) -> int:
    if isinstance(error, errors.ArchiveRefused):
        return error.status
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def make_observe(telemetry: RequestMetrics) -> Middleware:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give the request an id, log one line for it and count it."""
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            duration = time.perf_counter() - started
            route = _route_name(request)
            telemetry.observe_request(route, status, duration)
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round(duration * 1000, 2),
                cache=request.get("cache", "-"),
                route=route,
            )

    return observe


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Open to every origin: browser apps send Authorization, so every call is preflighted."""
    if request.method == "OPTIONS":
        return web.Response(
            status=204,
            headers={
                **CORS_HEADERS,
                **PREFLIGHT_HEADERS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            },
        )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(CORS_HEADERS)
        raise
    response.headers.update(CORS_HEADERS)
    return response


def answer_when_stopped(stopping: Stopping, retry_after: int) -> Middleware:
    """A request still running when shutdown's time for requests is up gets a 503 saying so,
    rather than a connection dropped without an answer (`Stopping`)."""

    @web.middleware
    async def stopped(request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        stopping.track(task)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not stopping.cut or task.uncancel() > 0:
                raise
            response = web.json_response(
                {"message": "The service is stopping; retry in a few seconds"},
                status=503,
                headers={"Retry-After": str(retry_after)},
            )
            response.force_close()
            return response
        finally:
            stopping.untrack(task)

    return stopped


def json_errors(retry_after: int) -> Middleware:
    """Every error is JSON with a `message`; nothing escapes as a traceback.

    A 503 says when to come back: the queue's own estimate when it is full, else `retry_after`.
    """

    @web.middleware
    async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ThumbnailError as err:
            status = status_of(err)
            body: dict[str, object] = {"message": err.message}
            headers: dict[str, str] = {}
            if isinstance(err, errors.ArchiveRefused) and err.detail is not None:
                body["response"] = err.detail
            if isinstance(err, errors.ArchiveRefused) and err.retry_after is not None:
                headers["Retry-After"] = str(err.retry_after)
            if isinstance(err, errors.Overloaded):
                headers["Retry-After"] = str(err.retry_after)
            elif status == 503:
                headers["Retry-After"] = str(retry_after)
            log.warning(
                "request_failed", status=status, error=type(err).__name__, message=err.message
            )
            return web.json_response(body, status=status, headers=headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.reason
            if exc.status == 404:
                message = "Not found: frames are at /<frame_id>/ or /<basename>/ (see /)"
            elif exc.status == 405:
                message = f"Method {request.method} is not allowed here"
            return web.json_response(
                {"message": message}, status=exc.status, headers=_passable(exc.headers)
            )
        except Exception:
            log.exception("unhandled_error")
            return web.json_response(
                {"message": "Internal error; the request id identifies it in the logs"},
                status=500,
            )

    return answer_errors


def _passable(headers: object) -> dict[str, str]:
    keep = ("Allow", "Retry-After")
    return {k: v for k, v in dict(headers).items() if k in keep}  # type: ignore[call-overload]


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"
