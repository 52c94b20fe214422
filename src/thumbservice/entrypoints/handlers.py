"""HTTP handlers: translate a request into a service call and the answer back. Nothing else."""

from __future__ import annotations

import hashlib
from typing import Protocol

from aiohttp import web
from dependency_injector.wiring import Provide, inject

from thumbservice.domain.service import ONE_WEEK, Thumbnail, ThumbnailService
from thumbservice.domain.spec import ImageFormat, ThumbnailSpec
from thumbservice.entrypoints import docs, pages
from thumbservice.entrypoints.headers import if_none_match, page_policy
from thumbservice.entrypoints.openapi import openapi
from thumbservice.entrypoints.readiness import Readiness
from thumbservice.entrypoints.settings import Settings

IMAGE_CACHE_CONTROL = "private, max-age=86400"
CACHE_HEADER = "X-Thumbnail-Cache"

_INDEX_STYLE = pages.INDEX_HTML.split("<style>", 1)[1].split("</style>", 1)[0]
INDEX_POLICY = page_policy(style=_INDEX_STYLE)
DOCS_POLICY = page_policy()


class SignedUrlStore(Protocol):
    """A store whose objects the app serves itself, to holders of a URL it signed."""

    def verify(self, key: str, expires: str, signature: str) -> bool: ...

    async def get(self, key: str) -> bytes | None: ...


class MetricsExposition(Protocol):
    content_type: str

    def exposition(self) -> bytes: ...


@inject
async def thumbnail(
    request: web.Request,
    service: ThumbnailService = Provide["service"],
    settings: Settings = Provide["settings"],
) -> web.StreamResponse:
    spec = ThumbnailSpec.from_query(
        request.match_info["frame"], request.query, max_size=settings.max_thumbnail_size
    )
    if request.method == "HEAD":
        return await _head(request, service, spec)
    result = await service.thumbnail(spec, request.headers.get("Authorization"))
    request["cache"] = "hit" if result.cache_hit else "miss"
    if spec.image:
        return _image(request, result)
    return web.json_response({"url": result.url, "propid": result.propid})


async def _head(
    request: web.Request, service: ThumbnailService, spec: ThumbnailSpec
) -> web.StreamResponse:
    """HEAD never renders (`ThumbnailService.look`). A cached image answers the headers its
    GET would (Content-Length, ETag); otherwise the answer has no Content-Length or ETag,
    which only the render would tell. `X-Thumbnail-Cache` says which (hit or miss)."""
    result = await service.look(spec, request.headers.get("Authorization"))
    cache = "hit" if result.cache_hit else "miss"
    request["cache"] = cache
    if result.data is not None:
        response: web.StreamResponse = _image(request, result)
    else:
        response = web.StreamResponse(
            headers={"Cache-Control": IMAGE_CACHE_CONTROL, "Vary": "Authorization"}
        )
        response.content_type = result.media_type if spec.image else "application/json"
    response.headers[CACHE_HEADER] = cache
    return response


def _image(request: web.Request, result: Thumbnail) -> web.Response:
    assert result.data is not None
    etag = hashlib.blake2b(result.data, digest_size=16).hexdigest()
    headers = {"Cache-Control": IMAGE_CACHE_CONTROL, "Vary": "Authorization"}
    if etag in if_none_match(request.headers.get("If-None-Match", "")):
        response = web.Response(status=304, headers=headers)
        response.etag = etag
        return response
    response = web.Response(body=result.data, content_type=result.media_type, headers=headers)
    response.etag = etag
    return response


@inject
async def stored_thumbnail(
    request: web.Request, store: SignedUrlStore = Provide["signed_urls"]
) -> web.StreamResponse:
    """Serve an object of the local filesystem store to the holder of a signed URL."""
    key = request.match_info["key"]
    if not store.verify(key, request.query.get("expires", ""), request.query.get("signature", "")):
        raise web.HTTPForbidden(reason="This thumbnail URL is invalid or has expired")
    data = await store.get(key)
    if data is None:
        raise web.HTTPNotFound(reason="No such thumbnail")
    return web.Response(
        body=data,
        content_type=ImageFormat.of_key(key).media_type,
        headers={"Cache-Control": IMAGE_CACHE_CONTROL},
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@inject
async def readyz(request: web.Request, readiness: Readiness = Provide["readiness"]) -> web.Response:
    report = await readiness.report()
    return web.json_response(report.as_json(), status=200 if report.ready else 503)


@inject
async def metrics(
    request: web.Request, telemetry: MetricsExposition = Provide["telemetry"]
) -> web.Response:
    response = web.Response(body=telemetry.exposition())
    response.headers["Content-Type"] = telemetry.content_type
    return response


@inject
async def openapi_json(
    request: web.Request, settings: Settings = Provide["settings"]
) -> web.Response:
    document = openapi(settings.max_thumbnail_size, metrics=settings.metrics_port == "main")
    return web.json_response(document)


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=docs.DOCS_HTML,
        content_type="text/html",
        headers={"Content-Security-Policy": DOCS_POLICY},
    )


async def docs_asset(request: web.Request) -> web.Response:
    """A script, style or icon of /docs, from a fixed list; anything else is a 404."""
    found = docs.asset(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(reason="No such file")
    body, media_type = found
    return web.Response(
        body=body, content_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )


@inject
async def index(
    request: web.Request, viewer_links: list[tuple[str, str]] = Provide["viewer_links"]
) -> web.Response:
    return web.Response(
        text=pages.index_page(viewer_links),
        content_type="text/html",
        headers={"Content-Security-Policy": INDEX_POLICY},
    )


async def robots(request: web.Request) -> web.Response:
    return web.Response(text=pages.ROBOTS_TXT, content_type="text/plain")


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        body=pages.favicon(),
        content_type="image/x-icon",
        headers={"Cache-Control": f"public, max-age={ONE_WEEK}"},
    )
