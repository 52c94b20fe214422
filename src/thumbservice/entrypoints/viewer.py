"""The deep-zoom viewer: one HTML page over OpenSeadragon, and OpenSeadragon's files.

OpenSeadragon 6.1.1 is vendored from its npm package (`npm pack openseadragon`: the minified
build, its button images and its BSD-3-Clause licence, under `static/openseadragon/`), ships
in the wheel and is served by the service: the page fetches nothing from elsewhere.

The token a caller types is kept in the tab's sessionStorage only and sent as Authorization
with info.json and every tile (OpenSeadragon's `loadTilesWithAjax` and `ajaxHeaders`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from urllib.parse import urlsplit

from thumbservice.domain.display import ColourMap, Stretch
from thumbservice.domain.iiif import Identifier
from thumbservice.entrypoints.headers import page_policy

STATIC_PREFIX = "/static/openseadragon/"
SCRIPT = "/static/viewer.js"
VIEW_PREFIX = "/view/"
OPENSEADRAGON_VERSION = "6.1.1"
DISPLAY_CHOICES: dict[str, list[str]] = {
    "stretch": [stretch.value for stretch in Stretch if stretch is not Stretch.FITS2IMAGE],
    "cmap": [colour_map.value for colour_map in ColourMap if colour_map is not ColourMap.GREY],
}
"""The stretch and colour-map choices the viewer offers, by their query parameters' names and
values (the display options' own; the first choice of each select is the service's default,
written as no option at all). The one list of them the page uses."""

_MEDIA_TYPES = {".js": "application/javascript", ".png": "image/png", ".txt": "text/plain"}


@lru_cache(maxsize=1)
def _assets() -> dict[str, tuple[bytes, str]]:
    root = resources.files("thumbservice.entrypoints") / "static" / "openseadragon"
    found: dict[str, tuple[bytes, str]] = {}
    for entry in [root, root / "images"]:
        for item in entry.iterdir():
            suffix = "." + item.name.rpartition(".")[2]
            if item.is_file() and suffix in _MEDIA_TYPES:
                name = item.name if entry is root else f"images/{item.name}"
                found[name] = (item.read_bytes(), _MEDIA_TYPES[suffix])
    return found


def asset(name: str) -> tuple[bytes, str] | None:
    """One of OpenSeadragon's files by its name under `STATIC_PREFIX`, or None."""
    return _assets().get(name)


def page(identifier: Identifier, iiif_prefix: str) -> str:
    """The viewer page for an identifier (its options are the page's initial choices)."""
    state = {
        "frame": str(identifier.frame),
        "options": dict(identifier.options),
        "choices": DISPLAY_CHOICES,
        "iiif": iiif_prefix + "/",
        "view": VIEW_PREFIX,
        "static": STATIC_PREFIX,
    }
    # JSON inside a <script> data block: no "</" may close it early, no "<!--" open a comment.
    data = json.dumps(state).replace("</", "<\\/").replace("<!--", "<\\u0021--")
    page = _PAGE.replace("$STYLE", _STYLE).replace("$STATIC", STATIC_PREFIX)
    return page.replace("$SCRIPT", SCRIPT).replace("$STATE", data)


def script() -> bytes:
    """The viewer's own script (`static/viewer.js`), served at `SCRIPT`."""
    return _script()


@lru_cache(maxsize=1)
def _script() -> bytes:
    return (resources.files("thumbservice.entrypoints") / "static" / "viewer.js").read_bytes()


def policy(public_base: str) -> str:
    """The page's Content-Security-Policy: scripts of its own only (no inline script: the page's
    state is a JSON data block), info.json and tiles from this service, by the page's origin or
    by the origin of `public_base` (where the tile source's `id` points), and no framing.
    Inline styles are allowed: OpenSeadragon sets style attributes on the elements it makes."""
    parts = urlsplit(public_base)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
    return page_policy(connect=origin)


_STYLE = """\
html,body{margin:0;height:100%;font-family:sans-serif;background:#111;color:#eee}
header{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:center;padding:.5em .8em;
background:#222}
header h1{font-size:1.1em;margin:0}
#osd{position:absolute;top:4.2em;bottom:0;left:0;right:0}
#status{color:#f99}
label{white-space:nowrap}
input,select,button{font:inherit}
a{color:#9cf}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>thumbservice viewer</title>
<style>
$STYLE</style></head><body>
<header>
<h1 id="basename">&hellip;</h1>
<span>proposal <b id="proposal">&hellip;</b></span>
<label>stretch <select id="stretch"></select></label>
<label>colour map <select id="cmap"></select></label>
<label id="color-choice" hidden><input type="checkbox" id="color"> colour</label>
<form id="token-form"><label>token
<input id="token" type="password" autocomplete="off" placeholder="archive token"></label>
<button type="submit">use</button> <button type="button" id="forget">forget</button></form>
<span id="status" role="status"></span>
</header>
<div id="osd"></div>
<script src="$STATICopenseadragon.min.js"></script>
<script type="application/json" id="state">$STATE</script>
<script src="$SCRIPT"></script>
</body></html>
"""
