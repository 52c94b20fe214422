"""The interactive API page at /docs: Swagger UI over /openapi.json, served by the service itself.

Swagger UI's scripts and styles come from the swagger-ui-py package (Apache-2.0), a dependency
pinned in uv.lock, so the page needs nothing from the internet: no CDN, and Swagger UI's
online validator is switched off. The package is found without being imported (its own Python
code, a web framework integration, is not used). Only the files the page needs are served,
from a fixed list, under /docs/static/; the page's own start-up script ships in this package.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

ASSET_PACKAGE = "swagger_ui"
STATIC_PREFIX = "/docs/static/"

_SWAGGER_UI_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
}
_OWN_FILES = {"docs.js": "text/javascript"}
_OWN_DIR = Path(__file__).with_name("static")

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>thumbservice API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head><body>
<noscript>This page needs JavaScript; the API itself is described at
<a href="openapi.json">/openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/static/docs.js"></script>
</body></html>
"""
"""Links are relative, so the page works behind a proxy that serves the service under a path."""


def _swagger_ui_dir() -> Path:
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {ASSET_PACKAGE} package (Swagger UI's files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@lru_cache(maxsize=len(_SWAGGER_UI_FILES) + len(_OWN_FILES))
def asset(name: str) -> tuple[bytes, str] | None:
    """The bytes and media type of a file of the page, or None for any other name."""
    if name in _OWN_FILES:
        return (_OWN_DIR / name).read_bytes(), _OWN_FILES[name]
    if name in _SWAGGER_UI_FILES:
        return (_swagger_ui_dir() / name).read_bytes(), _SWAGGER_UI_FILES[name]
    return None


def asset_names() -> tuple[str, ...]:
    return (*_SWAGGER_UI_FILES, *_OWN_FILES)
