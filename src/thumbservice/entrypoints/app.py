"""The aiohttp application: builds the container, wires the handlers, adds the routes.

Wiring is per module, so one process serves one app at a time (the deployment model); tests that
need two instances start two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from thumbservice.adapters.storage.s3 import S3Store
from thumbservice.entrypoints import handlers
from thumbservice.entrypoints.config import Settings
from thumbservice.entrypoints.containers import Container
from thumbservice.entrypoints.middleware import cors, json_errors, make_observe

CONTAINER = web.AppKey("container", Container)

log = structlog.get_logger("thumbservice.app")


def create_app(
    settings: Settings | None = None, container: Container | None = None
) -> web.Application:
    settings = settings or Settings.from_env()
    container = container or Container(settings=settings)
    container.wire(modules=[handlers])

    app = web.Application(middlewares=[make_observe(container.telemetry()), cors, json_errors])
    app[CONTAINER] = container
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/", handlers.index)
    app.router.add_get("/robots.txt", handlers.robots)
    app.router.add_get("/favicon.ico", handlers.favicon)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/openapi.json", handlers.openapi_json)
    app.router.add_get("/thumbnails/{key}", handlers.stored_thumbnail)
    app.router.add_get("/{frame}/", handlers.thumbnail)
    app.router.add_get("/{frame}", handlers.thumbnail)
    return app


async def _resolved(provided: Any) -> Any:
    """A provider answers a future when an async resource is involved, else the object itself."""
    return await provided if inspect.isawaitable(provided) else provided


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    settings: Settings = container.settings()
    workspace = container.workspace()
    removed = await asyncio.to_thread(workspace.clean_stale)
    # Resolving the service opens just the resources its chosen adapters need.
    service = await _resolved(container.service())
    await _resolved(container.readiness())
    store = await _resolved(container.store())
    if isinstance(store, S3Store):
        await store.ensure_bucket(settings.aws_default_region)
    warm = asyncio.create_task(service.renderer.warm())
    log.info(
        "started",
        archive=settings.archive_api_url if settings.archive_source == "http" else "samples",
        store=settings.store_kind,
        render_workers=settings.render_workers,
        stale_scratch_removed=removed,
    )
    try:
        yield
    finally:
        warm.cancel()
        with contextlib.suppress(BaseException):
            await warm
        await _resolved(container.shutdown_resources())
        await asyncio.to_thread(workspace.clean_own)
        container.unwire()
        log.info("stopped")
