"""The API described as OpenAPI 3.1, served at /openapi.json and shown at /docs.

Every parameter and every status the service answers is here, with the headers that matter
to a caller (ETag, Retry-After, X-Request-ID): the schema-driven tests hold the service to it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from thumbservice import __version__
from thumbservice.domain.display import (
    DEFAULT_CONTRAST,
    DEFAULT_POWER,
    MAX_POWER,
    MAX_STRETCH_A,
    MIN_POWER,
    MIN_STRETCH_A,
    STRETCH_A,
    ColourMap,
    Interval,
    Stretch,
)
from thumbservice.domain.spec import (
    BASENAME_PATTERN,
    DEFAULT_FORMAT,
    DEFAULT_PERCENTILE,
    DEFAULT_QUALITY,
    DEFAULT_SIZE,
    KEY_PATTERN,
    MAX_FRAME_ID,
    MAX_LABEL_LENGTH,
    MEDIAN_MIN_PERCENTILE,
    ImageFormat,
)

_ERROR = {"$ref": "#/components/schemas/Error"}
_REQUEST_ID = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
_BINARY = {"type": "string", "format": "binary"}
IMAGE_CONTENT = {kind.media_type: {"schema": _BINARY} for kind in ImageFormat}


def _error(description: str, **headers: Any) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_REQUEST_ID, **headers},
        "content": {"application/json": {"schema": _ERROR}},
    }


def _answer(description: str, content: dict[str, Any] | None = None, **headers: Any) -> dict:
    answer: dict[str, Any] = {"description": description, "headers": {**_REQUEST_ID, **headers}}
    if content is not None:
        answer["content"] = content
    return answer


def _boolean(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": f"{description} (`true` or `false`; 1/0, yes/no and on/off are read too)",
        "schema": {"type": "boolean", "default": False},
    }


def _thumbnail_parameters(max_size: int) -> list[dict[str, Any]]:
    size = {"type": "integer", "minimum": 1, "maximum": max_size, "default": DEFAULT_SIZE}
    formats = [kind.value for kind in ImageFormat]
    return [
        {
            "name": "frame",
            "in": "path",
            "required": True,
            "description": (
                "The frame's archive id (faster), or its basename (the file name without "
                "extension; a name ending in .fits or .fits.fz is accepted too)"
            ),
            "schema": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": MAX_FRAME_ID},
                    {"type": "string", "pattern": f"^{BASENAME_PATTERN}$"},
                ]
            },
        },
        {
            "name": "width",
            "in": "query",
            "schema": size,
            "description": "Width of the box the thumbnail fits in, pixels (never upscaled)",
        },
        {
            "name": "height",
            "in": "query",
            "schema": size,
            "description": "Height of the box the thumbnail fits in, pixels (never upscaled)",
        },
        {
            "name": "label",
            "in": "query",
            "schema": {"type": "string", "maxLength": MAX_LABEL_LENGTH},
            "description": (
                f"White text in the lower left corner, up to {MAX_LABEL_LENGTH} characters. "
                "The font shrinks until the text fits the width; text that does not fit even "
                "at the smallest readable size is cut and ends with an ellipsis"
            ),
        },
        _boolean("color", "Color composite of the observing request's red, visual and blue frames"),
        _boolean("median", "Median-subtracted stretch clipped at `percentile`"),
        {
            "name": "percentile",
            "in": "query",
            "description": (
                "Upper clip of the median-subtracted stretch, used with `median=true` (where it "
                f"must be above {MEDIAN_MIN_PERCENTILE:g}); with `interval=percentile`, the share "
                "of pixels kept, the same share cut from both ends (astropy's "
                "`PercentileInterval`). Digits with an optional decimal point"
            ),
            "schema": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 100,
                "default": DEFAULT_PERCENTILE,
            },
        },
        {
            "name": "quality",
            "in": "query",
            "description": "Quality of the lossy formats (JPEG, WebP); PNG is lossless",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": DEFAULT_QUALITY},
        },
        {
            "name": "format",
            "in": "query",
            "description": "How the thumbnail is encoded (empty, as for every choice: the default)",
            "schema": {"type": "string", "enum": [*formats, ""], "default": DEFAULT_FORMAT.value},
        },
        _boolean("image", "Answer with the image itself instead of JSON"),
        *display_parameters(),
        {
            "name": "If-None-Match",
            "in": "header",
            "description": "The ETag of an image answer already held (with `image=true`)",
            "schema": {"type": "string"},
        },
    ]


def display_parameters() -> list[dict[str, Any]]:
    """The display options (`domain.display`): astropy.visualization's names and meanings.

    No number here has a `default`: /docs would fill it in, and `contrast` or `power` given
    asks for a stretch of their own.
    """

    def number(name: str, description: str, **schema: Any) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "description": f"{description}. A finite number (a sign and an exponent allowed)",
            "schema": {"type": "number", **schema},
        }

    stretch_a = ", ".join(f"{s} {a:g}" for s, a in STRETCH_A.items())
    return [
        {
            "name": "stretch",
            "in": "query",
            "description": (
                "How the values between the interval's limits become grey levels, as "
                "astropy.visualization's stretch of that name: the level is "
                "floor(255 * stretch(x)), x the value scaled to [0, 1] by the interval and "
                "clipped. `fits2image` (the default) is fits2image's own picture: zscale "
                "limits from the median up, a gamma of 2.5, and `median`/`percentile`. Giving "
                "an interval or cuts without a stretch chooses `linear`"
            ),
            "schema": {
                "type": "string",
                "enum": [*(s.value for s in Stretch), ""],
                "default": Stretch.FITS2IMAGE.value,
            },
        },
        number(
            "a",
            f"The constant of stretch=log, asinh or sinh (astropy's defaults: {stretch_a})",
            minimum=MIN_STRETCH_A,
            maximum=MAX_STRETCH_A,
        ),
        number(
            "power",
            f"The exponent of stretch=power (x ** power; {DEFAULT_POWER:g} when not given)",
            minimum=MIN_POWER,
            maximum=MAX_POWER,
        ),
        {
            "name": "interval",
            "in": "query",
            "description": (
                "Which values are drawn black and white, as astropy.visualization's intervals: "
                "`zscale` (ZScaleInterval, with `contrast`; the default of every stretch but "
                "histeq), `minmax` (the finite minimum and maximum; histeq's default), "
                "`percentile` (PercentileInterval of `percentile`), `manual` (`min_cut` and "
                "`max_cut`). Not with stretch=fits2image, which has its own limits. For color, "
                "each channel takes its own interval unless `joint_interval=true`"
            ),
            "schema": {"type": "string", "enum": [*(i.value for i in Interval), ""]},
        },
        number(
            "min_cut",
            "The data value drawn black, with interval=manual (which it implies); without it, "
            "the data's minimum. Must be below max_cut",
        ),
        number(
            "max_cut",
            "The data value drawn white, with interval=manual (which it implies); without it, "
            "the data's maximum",
        ),
        number(
            "contrast",
            f"ZScaleInterval's contrast, with interval=zscale ({DEFAULT_CONTRAST:g} when not "
            "given; giving it chooses interval=zscale)",
            exclusiveMinimum=0,
            maximum=1,
        ),
        {
            "name": "cmap",
            "in": "query",
            "description": (
                "The colour map of a black-and-white thumbnail, applied to its grey levels "
                "(colours from the cmap library; heat, cool and rainbow are DS9's equivalents). "
                "Not with `color=true`"
            ),
            "schema": {
                "type": "string",
                "enum": [*(c.value for c in ColourMap), ""],
                "default": ColourMap.GREY.value,
            },
        },
        _boolean("invert", "Dark stars on a light sky: grey level v drawn as 255 - v"),
        _boolean(
            "joint_interval",
            "With `color=true`: one interval over the three channels together instead of one "
            "for each",
        ),
    ]


def _thumbnail(max_size: int) -> dict[str, Any]:
    retry_after = {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
    etag = {"$ref": "#/components/headers/ETag"}
    return {
        "operationId": "thumbnail",
        "tags": ["thumbnails"],
        "summary": "A thumbnail of one frame",
        "description": (
            "The archive is asked for the frame on every request, with the caller's "
            "`Authorization`: that is the permission check, cached thumbnail or not. "
            "The trailing slash of the path is optional. `HEAD` does the permission check "
            "and the cache lookup and never renders: a cached image answers its `GET`'s "
            "headers (`Content-Length`, `ETag`); otherwise there is neither, and "
            "`X-Thumbnail-Cache` (`hit` or `miss`) says which."
        ),
        "parameters": _thumbnail_parameters(max_size),
        # Anonymous callers see public frames; a token shows its owner's proprietary ones too.
        "security": [{}, {"archiveToken": []}],
        "responses": {
            "200": _answer(
                "A URL to the thumbnail (valid for a week), or with `image=true` the image "
                "itself in the requested format",
                {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Thumbnail"}},
                    **IMAGE_CONTENT,
                },
                ETag=etag,
                **{"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}},
            ),
            "304": _answer("Not modified: `If-None-Match` names this image", ETag=etag),
            "400": _error(
                "A bad parameter or frame name (naming the parameter and what it allows), or a "
                "frame the rules exclude"
            ),
            "401": _error("The archive refused the token"),
            "403": _error("The archive forbade the caller this frame"),
            "404": _error("No such frame for this caller, or RVB frames not found"),
            "422": _error("Not a readable FITS image, or beyond the size limits"),
            "429": _error(
                "The archive is throttling the caller (its Retry-After, when it gave one)",
                **{"Retry-After": {**retry_after, "required": False}},
            ),
            "4XX": _error("Another refusal of the archive, passed on with its answer"),
            "502": _error("The archive or its file store failed or could not be reached"),
            "503": _error(
                "Busy (the render queue, downloads or connections are full), a render worker "
                "failed, the object store is down, no scratch space is left, or the service "
                "is stopping",
                **{"Retry-After": retry_after},
            ),
            "504": _error("The archive did not answer in time, or the request deadline passed"),
        },
    }


def _plain(operation_id: str, summary: str, media_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "tags": ["service"],
            "summary": summary,
            "responses": {
                "200": _answer(summary, {media_type: {"schema": {"type": "string"}}}),
            },
            **extra,
        }
    }


def _stored_thumbnail() -> dict[str, Any]:
    return {
        "get": {
            "operationId": "storedThumbnail",
            "tags": ["thumbnails"],
            "summary": "A thumbnail of the local filesystem store, by its signed URL",
            "description": (
                "Only when the service keeps thumbnails on its own disk "
                "(THUMBNAIL_STORE=local); the `url` of a JSON answer points here."
            ),
            "parameters": [
                {
                    "name": "key",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": f"^{KEY_PATTERN}$"},
                },
                {
                    "name": "expires",
                    "in": "query",
                    "required": True,
                    "description": "Unix time the URL expires, ASCII digits",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                },
                {
                    "name": "signature",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": _answer(
                    "The image, in the format its key ends with",
                    IMAGE_CONTENT,
                    **{"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}},
                ),
                "403": _error("The URL is invalid or has expired"),
                "404": _error("No such thumbnail, or the service uses S3"),
            },
        }
    }


_IDENTIFIER = {
    "name": "identifier",
    "in": "path",
    "required": True,
    "description": (
        "The frame id or basename, optionally followed by display options as `;name=value` "
        "pairs with the thumbnail route's query parameters' names and values "
        "(`1003;color=true`, `1001;median=true;percentile=99`); percent-encoded forms are "
        "accepted. info.json's `id` writes it canonically: options sorted, those that change "
        "nothing dropped. `width`, `height`, `label`, `format`, `quality` and `image` are not "
        "options (the image request says size and format). A name that cannot be a frame is a "
        "404, as IIIF has it."
    ),
    "schema": {"type": "string", "minLength": 1},
}


def _iiif_errors() -> dict[str, Any]:
    return {
        "400": _error("A bad region, size, rotation, quality, format or display option"),
        "401": _error("The archive refused the token"),
        "403": _error("The archive forbade the caller this frame"),
        "404": _error("No such frame for this caller (or a name that cannot be one)"),
        "422": _error("Not a readable FITS image, or beyond the size limits"),
        "4XX": _error("Another refusal of the archive, passed on with its answer"),
        "502": _error("The archive or its file store failed or could not be reached"),
        "503": _error("Busy, or a render worker failed", **{"Retry-After": _RETRY_AFTER}),
        "504": _error("The archive did not answer in time, or the request deadline passed"),
    }


_RETRY_AFTER = {"description": "Seconds to wait", "schema": {"type": "string"}}
_PRIVATE = {
    "description": "`private`: views may be proprietary",
    "schema": {"type": "string"},
}


def _deep_zoom() -> dict[str, Any]:
    """The IIIF Image API 3.0 routes and the viewer."""
    security: list[dict[str, list[str]]] = [{}, {"archiveToken": []}]
    piece = {"in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    image_types = {
        media: {"schema": _BINARY} for media in ("image/jpeg", "image/png", "image/webp")
    }
    info_type = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
    return {
        "/iiif/3/{identifier}": {
            "get": {
                "operationId": "iiifBaseUri",
                "tags": ["deep zoom"],
                "summary": "The image's base URI: a redirect to its info.json",
                "parameters": [_IDENTIFIER],
                "responses": {
                    "303": _answer(
                        "See info.json",
                        Location={"description": "info.json", "schema": {"type": "string"}},
                    ),
                    "400": _error("A bad display option"),
                    "404": _error("A name that cannot be a frame"),
                },
            }
        },
        "/iiif/3/{identifier}/info.json": {
            "get": {
                "operationId": "iiifInfo",
                "tags": ["deep zoom"],
                "summary": "The image information (IIIF Image API 3.0, level 2)",
                "description": (
                    "The frame's full-resolution picture (north up, east left; colour aligned "
                    "on the WCS): its size, 512 px tiles with power-of-two scale factors, the "
                    "sizes of the levels, the limits (`maxWidth`, `maxHeight`, `maxArea`: the "
                    "picture's own, up to which `^` sizes upscale), `extraFormats` and "
                    "`extraQualities`. Its `id` is the public base URI (`PUBLIC_URL`, else "
                    "the request's scheme and host, or a trusted proxy's X-Forwarded-Proto "
                    "and X-Forwarded-Host)."
                ),
                "parameters": [_IDENTIFIER],
                "security": security,
                "responses": {
                    "200": _answer(
                        "The image information",
                        {info_type: {"schema": {"type": "object"}}},
                        **{"Cache-Control": _PRIVATE},
                    ),
                    **_iiif_errors(),
                },
            }
        },
        "/iiif/3/{identifier}/{region}/{size}/{rotation}/{file}": {
            "get": {
                "operationId": "iiifImage",
                "tags": ["deep zoom"],
                "summary": "A region of the frame's picture, scaled, turned, in a quality",
                "description": (
                    "IIIF Image API 3.0 level 2, cut from the same full-resolution picture as "
                    "the thumbnail route draws at full size (the stretch is the whole "
                    "frame's, so tiles have no seams). Tiles are not kept in the object store."
                ),
                "parameters": [
                    _IDENTIFIER,
                    {
                        **piece,
                        "name": "region",
                        "description": "`full`, `square`, `x,y,w,h` or `pct:x,y,w,h`",
                    },
                    {
                        **piece,
                        "name": "size",
                        "description": "`max`, `w,`, `,h`, `pct:n`, `w,h`, `!w,h`; `^` first to "
                        "upscale (up to the picture's own size)",
                    },
                    {
                        **piece,
                        "name": "rotation",
                        "description": "0, 90, 180 or 270 degrees clockwise, `!` first to mirror; "
                        "other angles are a 400",
                    },
                    {
                        **piece,
                        "name": "file",
                        "description": "`{quality}.{format}`: `default`, `color`, `gray` or "
                        "`bitonal`; `jpg`, `png` or `webp`",
                    },
                ],
                "security": security,
                "responses": {
                    "200": _answer(
                        "The image",
                        image_types,
                        ETag={"description": "For `If-None-Match`", "schema": {"type": "string"}},
                        **{"Cache-Control": _PRIVATE},
                    ),
                    "304": _answer("Not modified: `If-None-Match` names this view"),
                    **_iiif_errors(),
                },
            }
        },
        "/view/{identifier}": {
            "get": {
                "operationId": "viewer",
                "tags": ["deep zoom"],
                "summary": "The deep-zoom viewer (OpenSeadragon, served by the service)",
                "description": (
                    "An HTML page on the identifier's tile source, with a token field (kept "
                    "for the tab only, sent as Authorization), stretch and colour map choices "
                    "and colour on or off where the frame has it"
                ),
                "parameters": [_IDENTIFIER],
                "responses": {
                    "200": _answer("The page", {"text/html": {"schema": {"type": "string"}}}),
                    "400": _error("A bad display option"),
                    "404": _error("A name that cannot be a frame"),
                },
            }
        },
        "/view/{identifier}/frame.json": {
            "get": {
                "operationId": "viewerFrame",
                "tags": ["deep zoom"],
                "summary": "What the viewer shows of a frame, for this caller",
                "parameters": [_IDENTIFIER],
                "security": security,
                "responses": {
                    "200": _answer(
                        "The frame's basename, proposal and whether it has a colour picture",
                        {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["basename", "proposal_id", "color_available"],
                                    "properties": {
                                        "basename": {"type": ["string", "null"]},
                                        "proposal_id": {"type": ["string", "null"]},
                                        "color_available": {"type": "boolean"},
                                    },
                                }
                            }
                        },
                    ),
                    **_iiif_errors(),
                },
            }
        },
    }


def _operations() -> dict[str, Any]:
    report = {"$ref": "#/components/schemas/Readiness"}
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "tags": ["service"],
                "summary": "Liveness: the process answers",
                "responses": {
                    "200": _answer(
                        "Alive",
                        {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "tags": ["service"],
                "summary": (
                    "Readiness: the archive and the store are reachable, the render workers run"
                ),
                "responses": {
                    "200": _answer("Ready", {"application/json": {"schema": report}}),
                    "503": _answer(
                        "Not ready; says which part is not, and why",
                        {"application/json": {"schema": report}},
                    ),
                },
            }
        },
        "/metrics": _plain(
            "metrics",
            "Prometheus metrics",
            "text/plain",
            description="The Prometheus text exposition format.",
        ),
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": ["service"],
                "summary": "This document",
                "responses": {
                    "200": _answer(
                        "OpenAPI 3.1", {"application/json": {"schema": {"type": "object"}}}
                    )
                },
            }
        },
        "/docs": _plain(
            "docs",
            "This API as an interactive page, where calls can be tried",
            "text/html",
            description="Its scripts and styles are served by the service under /docs/static/.",
        ),
        "/": _plain("index", "A short page describing the API", "text/html"),
        "/robots.txt": _plain("robots", "Asks crawlers to stay away", "text/plain"),
        "/favicon.ico": {
            "get": {
                "operationId": "favicon",
                "tags": ["service"],
                "summary": "The service's icon",
                "responses": {"200": _answer("The icon", {"image/x-icon": {"schema": _BINARY}})},
            }
        },
    }


@lru_cache(maxsize=4)
def openapi(max_size: int, *, metrics: bool = True) -> dict[str, Any]:
    """Built once per maximum size; callers must not change what it returns. `metrics`: whether
    this port serves /metrics (not when METRICS_PORT moves it to a port of its own, or is off)."""
    document = _document(max_size)
    if metrics:
        return document
    return {**document, "paths": {k: v for k, v in document["paths"].items() if k != "/metrics"}}


@lru_cache(maxsize=4)
def _document(max_size: int) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "thumbservice",
            "version": __version__,
            "description": (
                "Thumbnails of astronomical FITS frames held in an OCS Science Archive. "
                'Errors are JSON `{"message": ...}`, with the archive\'s answer under '
                "`response` where it refused the caller. CORS is open to every origin."
            ),
        },
        "tags": [
            {"name": "thumbnails", "description": "Thumbnails of frames"},
            {"name": "service", "description": "Operations and pages"},
            {
                "name": "deep zoom",
                "description": "The IIIF Image API 3.0 (level 2) over frames, and a viewer",
            },
        ],
        "paths": {
            "/{frame}/": {"get": _thumbnail(max_size)},
            "/thumbnails/{key}": _stored_thumbnail(),
            **_deep_zoom(),
            **_operations(),
        },
        "components": {
            "schemas": {
                "Thumbnail": {
                    "type": "object",
                    "required": ["url", "propid"],
                    "properties": {
                        "url": {
                            "type": "string",
                            "format": "uri",
                            "description": "Where the thumbnail is, for a week",
                        },
                        "propid": {
                            "type": ["string", "null"],
                            "description": "The frame's proposal",
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {"type": "string"},
                        "response": {"description": "The archive's answer, where it refused"},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                },
                "Readiness": {
                    "type": "object",
                    "required": ["status", "archive", "store"],
                    "properties": {
                        "status": {"enum": ["ready", "not ready"]},
                        "archive": {"type": "string", "description": "`ok`, or what failed"},
                        "store": {"type": "string", "description": "`ok`, or what failed"},
                        "renderer": {
                            "type": "string",
                            "description": "`ok`, or why the render workers cannot be relied on",
                        },
                    },
                },
            },
            "securitySchemes": {
                "archiveToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": (
                        "The caller's archive token, `Token ...` or `Bearer ...`, forwarded to "
                        "the archive unchanged on every archive call made for the caller, and "
                        "only there: the archive decides which frames the caller sees"
                    ),
                }
            },
            "headers": {
                "X-Request-ID": {
                    "description": "The caller's request id, or a new one; also in the log line",
                    "schema": {"type": "string"},
                },
                "ETag": {
                    "description": "Of the image (with `image=true`), for `If-None-Match`",
                    "schema": {"type": "string"},
                },
                "Cache-Control": {
                    "description": (
                        "`private`: thumbnails may be proprietary, so shared caches must not "
                        "keep them; JSON answers are `private, no-store` (they carry "
                        "presigned URLs) with `Vary: Authorization`"
                    ),
                    "schema": {"type": "string"},
                },
            },
        },
    }
