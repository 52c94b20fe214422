"""Headers every answer carries, whatever produced it: what browsers and caches may do with it.

- Every answer: `X-Content-Type-Options: nosniff` (a browser takes the declared type, never
  guesses), and a `Server` without a version (nothing to match against a list of flaws).
- JSON answers and errors: `Cache-Control: private, no-store` and `Vary: Authorization`. They
  carry presigned URLs and per-caller answers (a proprietary frame's `propid`), so no cache may
  keep them, and a cache that ignores `no-store` must still not give one caller's answer to
  another.
- HTML pages (/, /docs and the viewer): a Content-Security-Policy that allows only this
  service's own scripts, styles and images, and `frame-ancestors 'none'` so no other site can
  frame them.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web
from multidict import CIMultiDict

SERVER = "thumbservice"
JSON_CACHE_CONTROL = "private, no-store"


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline `<style>` and no other."""
    digest = hashlib.sha256(css.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_policy(*, style: str | None = None, connect: str | None = None) -> str:
    """A restrictive CSP for a page of this service.

    Without `style`, styles come from the service's own files plus the inline style attributes
    Swagger UI sets from its script; with `style`, only that one inline `<style>` block.
    `connect`: an origin besides the page's own that its scripts may fetch from (the service's
    public origin, for the viewer's info.json and tiles).
    """
    styles = style_hash(style) if style is not None else "'self' 'unsafe-inline'"
    connect_src = "'self'" if not connect else f"'self' {connect}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src {styles}",
            # Thumbnails come from the object store; Swagger UI shows an image answer as a blob.
            "img-src 'self' data: blob: https: http:",
            f"connect-src {connect_src}",
            "font-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def if_none_match(header: str) -> frozenset[str]:
    """The entity tags an `If-None-Match` header names, weak or strong, without quotes."""
    return frozenset(
        part.strip().removeprefix("W/").strip('"') for part in header.split(",") if part.strip()
    )


def harden(headers: CIMultiDict[str], content_type: str | None) -> None:
    """Add the headers above to an answer's headers (those already set are kept)."""
    headers["Server"] = SERVER
    headers["X-Content-Type-Options"] = "nosniff"
    if content_type == "application/json":
        headers["Cache-Control"] = JSON_CACHE_CONTROL
        vary = headers.get("Vary", "")
        if "authorization" not in vary.lower():
            headers["Vary"] = f"{vary}, Authorization" if vary else "Authorization"
    elif content_type == "text/html":
        headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for older browsers


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's `on_response_prepare` signal: every answer of the app, before its headers go."""
    harden(response.headers, response.content_type)
