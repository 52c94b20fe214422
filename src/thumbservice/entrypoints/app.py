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

from thumbservice.entrypoints import handlers, iiif_handlers
from thumbservice.entrypoints.containers import Container
from thumbservice.entrypoints.middleware import cors, json_errors, make_observe
from thumbservice.entrypoints.server import serve_until_signalled
from thumbservice.entrypoints.settings import ConfigError, Settings

CONTAINER = web.AppKey("container", Container)

log = structlog.get_logger("thumbservice.app")


def create_app(container: Container) -> web.Application:
    """The app for a container built from settings (`Container(settings=...)`)."""
    settings: Settings = container.settings()
    app = web.Application(
        middlewares=[make_observe(container.telemetry()), cors, json_errors(settings.retry_after)]
    )
    app[CONTAINER] = container
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/", handlers.index)
    app.router.add_get("/robots.txt", handlers.robots)
    app.router.add_get("/favicon.ico", handlers.favicon)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
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
        await _resolved(container.shutdown_resources())
        container.unwire()
        log.info("stopped")


def load_settings() -> Settings:
    """The environment's settings, or exit with status 2 and a message naming the variable."""
    try:
        return Settings.from_env()
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
    asyncio.run(
        serve_until_signalled(
            create_app(container), settings.host, settings.port, settings.shutdown_timeout
        )
    )
