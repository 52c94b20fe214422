"""HTTP handlers of deep zoom: the IIIF Image API 3.0 routes and the viewer. Thin: parse, call
the use case, answer."""

from __future__ import annotations

import re

from aiohttp import web
from dependency_injector.wiring import Provide, inject

from thumbservice.domain import iiif
from thumbservice.domain.deepzoom import DeepZoomService
from thumbservice.entrypoints import viewer
from thumbservice.entrypoints.headers import if_none_match
from thumbservice.entrypoints.settings import Settings

PREFIX = "/iiif/3"
IMAGE_CACHE_CONTROL = "private, max-age=86400"
INFO_CACHE_CONTROL = "private, max-age=60"
PROFILE_LINK = f'<http://iiif.io/api/image/3/{iiif.PROFILE}.json>;rel="profile"'
_VARY_LINK = {"Vary": "Authorization", "Link": PROFILE_LINK}
_FORWARDED_HOST = re.compile(
    r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?"
)


def public_base(request: web.Request, settings: Settings) -> str:
    """How clients reach this service: PUBLIC_URL, else the request's own scheme and host, or
    those a trusted proxy says (X-Forwarded-Proto, X-Forwarded-Host)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme, host = request.scheme, request.host
    if settings.trust_forwarded_headers:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto in ("http", "https"):
            scheme = proto
        if _FORWARDED_HOST.fullmatch(forwarded):
            host = forwarded
    return f"{scheme}://{host}"


def service_id(request: web.Request, settings: Settings, identifier: iiif.Identifier) -> str:
    return f"{public_base(request, settings)}{PREFIX}/{identifier.canonical}"


def _identifier(request: web.Request) -> iiif.Identifier:
    return iiif.parse_identifier(request.match_info["identifier"])


@inject
async def base_uri(request: web.Request, settings: Settings = Provide["settings"]) -> web.Response:
    """The image's base URI: 303 to its info.json."""
    location = f"{service_id(request, settings, _identifier(request))}/info.json"
    raise web.HTTPSeeOther(location=location)


@inject
async def info_json(
    request: web.Request,
    service: DeepZoomService = Provide["deepzoom"],
    settings: Settings = Provide["settings"],
) -> web.StreamResponse:
    identifier = _identifier(request)
    if request.method == "HEAD":  # the permission check, never a render
        await service.look(identifier, None, request.headers.get("Authorization"))
        head = web.StreamResponse(headers={"Cache-Control": INFO_CACHE_CONTROL, **_VARY_LINK})
        head.headers["Content-Type"] = iiif.MEDIA_TYPE
        return head
    picture = await service.picture(identifier, request.headers.get("Authorization"))
    body = iiif.info(
        service_id(request, settings, identifier),
        picture.width,
        picture.height,
        iiif.limits_for(picture.width, picture.height),
        color=picture.color,
    )
    response = web.json_response(
        body,
        headers={"Cache-Control": INFO_CACHE_CONTROL, **_VARY_LINK},
    )
    response.headers["Content-Type"] = iiif.MEDIA_TYPE
    return response


@inject
async def image(
    request: web.Request, service: DeepZoomService = Provide["deepzoom"]
) -> web.StreamResponse:
    info = request.match_info
    # The syntax first: a bad request is a 400 whatever the frame, before any lookup.
    parsed = iiif.parse_image_request(info["region"], info["size"], info["rotation"], info["file"])
    identifier = _identifier(request)
    headers = {"Cache-Control": IMAGE_CACHE_CONTROL, **_VARY_LINK}
    authorization = request.headers.get("Authorization")
    if request.method == "HEAD":  # the permission check and the tag, never a render
        head = web.StreamResponse(headers=headers)
        head.content_type = parsed.format.media_type
        tag = await service.look(identifier, parsed, authorization)
        assert tag is not None
        head.etag = tag
        return head
    tags = if_none_match(request.headers.get("If-None-Match", ""))
    view = await service.view(identifier, parsed, authorization, tags)
    if view.data is None:
        response = web.Response(status=304, headers=headers)
        response.etag = view.etag
        return response
    response = web.Response(body=view.data, content_type=parsed.format.media_type, headers=headers)
    response.etag = view.etag
    return response


@inject
async def view_page(request: web.Request, settings: Settings = Provide["settings"]) -> web.Response:
    """The viewer: OpenSeadragon on the identifier's tile source."""
    identifier = _identifier(request)
    return web.Response(
        text=viewer.page(identifier, PREFIX),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": viewer.policy(public_base(request, settings))},
    )


@inject
async def view_frame(
    request: web.Request, service: DeepZoomService = Provide["deepzoom"]
) -> web.Response:
    """What the viewer shows of the frame (its names, whether it has colour), for this caller."""
    identifier = _identifier(request)
    summary = await service.summary(identifier, request.headers.get("Authorization"))
    return web.json_response(
        {
            "basename": summary.basename,
            "proposal_id": summary.proposal_id,
            "color_available": summary.color_available,
        },
        headers={"Vary": "Authorization"},  # Cache-Control: JSON's own (`headers.harden`)
    )


async def viewer_script(request: web.Request) -> web.Response:
    """The viewer page's own script."""
    return web.Response(
        body=viewer.script(),
        content_type="application/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def viewer_asset(request: web.Request) -> web.Response:
    """OpenSeadragon's script, its licence and its button images, from a fixed list."""
    found = viewer.asset(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(reason="No such file")
    body, media_type = found
    return web.Response(
        body=body, content_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )
