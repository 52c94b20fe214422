"""The API described as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from thumbservice import __version__
from thumbservice.domain.spec import DEFAULT_PERCENTILE, DEFAULT_QUALITY, DEFAULT_SIZE

_ERROR = {"$ref": "#/components/schemas/Error"}


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
            "description": "The frame's archive id, or its basename (file name without extension)",
            "schema": {"type": "string"},
        },
        {"name": "width", "in": "query", "schema": size, "description": "Box width, pixels"},
        {"name": "height", "in": "query", "schema": size, "description": "Box height, pixels"},
        {
            "name": "label",
            "in": "query",
            "schema": {"type": "string", "maxLength": 256},
            "description": "White text in the lower left corner",
        },
        _boolean("color", "Color composite of the request's red, visual and blue frames"),
        _boolean("median", "Median-subtracted stretch clipped at `percentile`"),
        {
            "name": "percentile",
            "in": "query",
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
