"""The aiohttp application: routes and middlewares over a container, and `main()` to serve it.

The container is the one start-up: the app's lifecycle only runs its resources. Wiring is per
module, so one process serves one app at a time (the deployment model); tests that need two
instances start two processes.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from thumbservice.entrypoints import handlers, iiif_handlers, viewer
from thumbservice.entrypoints.containers import Container
from thumbservice.entrypoints.directories import check_writable
from thumbservice.entrypoints.headers import on_response_prepare
from thumbservice.entrypoints.middleware import (
    answer_when_stopped,
    cors,
    json_errors,
    make_observe,
)
from thumbservice.entrypoints.server import (
    CONNECTION_LIMITS,
    STOPPING,
    ConnectionLimits,
    Stopping,
    pace_large_bodies,
    serve_until_signalled,
)
from thumbservice.entrypoints.settings import ConfigError, Settings

CONTAINER = web.AppKey("container", Container)

log = structlog.get_logger("thumbservice.app")


def create_app(container: Container) -> web.Application:
    """The app for a container built from settings (`Container(settings=...)`)."""
    settings: Settings = container.settings()
    stopping = Stopping(settings.shutdown_timeout)
    app = web.Application(
        middlewares=[
            make_observe(container.telemetry()),
            cors,
            answer_when_stopped(stopping, settings.retry_after),
            json_errors(settings.retry_after),
        ]
    )
    app[CONTAINER] = container
    app[STOPPING] = stopping
    app[CONNECTION_LIMITS] = ConnectionLimits(
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        send_timeout=settings.send_timeout,
        max_connections=settings.max_connections,
        on_close=container.telemetry().connection_closed,
    )
    app.on_response_prepare.append(on_response_prepare)
    app.on_response_prepare.append(pace_large_bodies)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/", handlers.index)
    app.router.add_get("/robots.txt", handlers.robots)
    app.router.add_get("/favicon.ico", handlers.favicon)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    if settings.metrics_port == "main":
        app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/openapi.json", handlers.openapi_json)
    app.router.add_get("/docs", handlers.docs_page)
    app.router.add_get("/docs/static/{name}", handlers.docs_asset)
    if container.signed_urls() is not None:
        # Only a store that the app serves itself needs this route; S3 serves its own URLs.
        app.router.add_get("/thumbnails/{key}", handlers.stored_thumbnail)
    _add_deep_zoom(app)
    app.router.add_get("/{frame}/", handlers.thumbnail)
    app.router.add_get("/{frame}", handlers.thumbnail)
    return app


def create_metrics_app() -> web.Application:
    """/metrics alone, for METRICS_PORT set to a port of its own (kept off the public one)."""
    app = web.Application()
    app.on_response_prepare.append(on_response_prepare)
    app.router.add_get("/metrics", handlers.metrics)
    return app


def _add_deep_zoom(app: web.Application) -> None:
    """The IIIF Image API routes, the viewer and its files (before the thumbnails' catch-all)."""
    prefix = iiif_handlers.PREFIX
    app.router.add_get(f"{prefix}/{{identifier}}", iiif_handlers.base_uri)
    app.router.add_get(f"{prefix}/{{identifier}}/info.json", iiif_handlers.info_json)
    app.router.add_get(
        f"{prefix}/{{identifier}}/{{region}}/{{size}}/{{rotation}}/{{file}}", iiif_handlers.image
    )
    app.router.add_get("/view/{identifier}", iiif_handlers.view_page)
    app.router.add_get("/view/{identifier}/frame.json", iiif_handlers.view_frame)
    app.router.add_get("/static/openseadragon/{name:.+}", iiif_handlers.viewer_asset)
    app.router.add_get(viewer.SCRIPT, iiif_handlers.viewer_script)


async def _resolved(provided: Any) -> Any:
    """Containers answer an awaitable when an async resource is involved, else the value."""
    return await provided if inspect.isawaitable(provided) else provided


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    settings: Settings = container.settings()
    await _resolved(container.init_resources())
    log.info(
        "started",
        archive=settings.archive_api_url if settings.archive_source == "http" else "samples",
        store=settings.store_kind,
        render_workers=settings.render_workers,
    )
    try:
        yield
    finally:
        # In order: the work under way (renders, uploads, the leases they hold) finishes or is
        # cancelled within the time left, and only then do the clients it uses close.
        stopping = app.get(STOPPING)
        patience = stopping.remaining() if stopping is not None else settings.shutdown_timeout
        service = await _resolved(container.service())
        log.info("work_draining", patience=round(patience, 3))
        cancelled = await service.stop(patience)
        log.info("work_stopped", cancelled=cancelled)
        await _resolved(container.shutdown_resources())
        container.unwire()
        log.info("stopped")


def load_settings() -> Settings:
    """The environment's settings, or exit with status 2 and a message naming the variable (a
    bad value, or a directory to write that is not writable)."""
    try:
        settings = Settings.from_env()
        check_writable(settings)
        return settings
    except ConfigError as err:
        print(f"thumbservice: configuration error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    """`thumbservice` and `python -m thumbservice`: serve, configured only from the environment."""
    container = Container(settings=load_settings())
    container.logs()
    serve(container)


def serve(container: Container) -> None:
    """Run the app until SIGINT or SIGTERM, then finish in-flight requests and stop."""
    settings: Settings = container.settings()
    side = (
        [(create_metrics_app(), settings.metrics_port)]
        if isinstance(settings.metrics_port, int)
        else []
    )
    asyncio.run(
        serve_until_signalled(
            create_app(container),
            settings.host,
            settings.port,
            settings.shutdown_timeout,
            side_apps=side,
        )
    )
