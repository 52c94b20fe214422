"""The API described as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from thumbservice import __version__
from thumbservice.domain.spec import (
    BASENAME_PATTERN,
    DEFAULT_PERCENTILE,
    DEFAULT_QUALITY,
    DEFAULT_SIZE,
    MAX_FRAME_ID,
    MAX_LABEL_LENGTH,
    MEDIAN_MIN_PERCENTILE,
)

_ERROR = {"$ref": "#/components/schemas/Error"}
KEY_PATTERN = r"^[0-9]{1,20}\.[0-9a-f]{32}\.jpg$"


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _boolean(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description + " (true/false, 1/0, yes/no, on/off)",
        "schema": {"type": "string", "default": "false"},
    }


@lru_cache(maxsize=4)
def openapi(max_size: int) -> dict[str, Any]:
    """Built once per maximum size; callers must not change what it returns."""
    size = {"type": "integer", "minimum": 1, "maximum": max_size, "default": DEFAULT_SIZE}
    parameters = [
        {
            "name": "frame",
            "in": "path",
            "required": True,
            "description": (
                "The frame's archive id, or its basename (the file name without extension; "
                "a name ending in .fits or .fits.fz is accepted too)"
            ),
            "schema": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": MAX_FRAME_ID},
                    {"type": "string", "pattern": f"^{BASENAME_PATTERN}$"},
                ]
            },
        },
        {"name": "width", "in": "query", "schema": size, "description": "Box width, pixels"},
        {"name": "height", "in": "query", "schema": size, "description": "Box height, pixels"},
        {
            "name": "label",
            "in": "query",
            "schema": {"type": "string", "maxLength": MAX_LABEL_LENGTH},
            "description": "White text in the lower left corner",
        },
        _boolean("color", "Color composite of the request's red, visual and blue frames"),
        _boolean("median", "Median-subtracted stretch clipped at `percentile`"),
        {
            "name": "percentile",
            "in": "query",
            "description": (
                "Upper clip of the median-subtracted stretch, used with `median=true` (where it "
                f"must be above {MEDIAN_MIN_PERCENTILE:g}); digits with an optional decimal point"
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
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": DEFAULT_QUALITY},
        },
        _boolean("image", "Answer with the JPEG itself instead of JSON"),
        {
            "name": "Authorization",
            "in": "header",
            "description": "Archive token (`Token ...` or `Bearer ...`), forwarded to the archive",
            "schema": {"type": "string"},
        },
    ]
    thumbnail = {
        "summary": "A thumbnail of one frame",
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "A URL to the thumbnail (valid for a week), or the JPEG",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Thumbnail"}},
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            "304": {"description": "Not modified (If-None-Match with image=true)"},
            "400": _error("A bad parameter, or a frame the rules exclude"),
            "401": _error("The archive refused the token"),
            "404": _error("No such frame for this caller, or RVB frames not found"),
            "422": _error("Not a readable FITS image, or beyond the size limits"),
            "502": _error("The archive failed or could not be reached"),
            "503": _error("Busy (see Retry-After), or the object store is down"),
            "504": _error("The archive did not answer in time, or the deadline passed"),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "thumbservice", "version": __version__},
        "paths": {
            "/{frame}/": {"get": thumbnail},
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: archive and store reachable",
                    "responses": {"200": {"description": "ready"}, "503": {"description": "not"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/": {
                "get": {
                    "summary": "A short page describing the API",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
            "/robots.txt": {
                "get": {
                    "summary": "Asks crawlers to stay away",
                    "responses": {"200": {"description": "text", "content": {"text/plain": {}}}},
                }
            },
            "/thumbnails/{key}": {
                "get": {
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
                            "schema": {"type": "string", "pattern": KEY_PATTERN},
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
                        "200": {
                            "description": "The JPEG",
                            "content": {"image/jpeg": {"schema": {"type": "string"}}},
                        },
                        "403": _error("The URL is invalid or has expired"),
                        "404": _error("No such thumbnail, or the service uses S3"),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Thumbnail": {
                    "type": "object",
                    "required": ["url", "propid"],
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "propid": {"type": ["string", "null"]},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}, "response": {}},
                },
            }
        },
    }
