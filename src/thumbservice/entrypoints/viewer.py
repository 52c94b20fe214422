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

from thumbservice.domain.display import ColourMap, Stretch
from thumbservice.domain.iiif import Identifier

STATIC_PREFIX = "/static/openseadragon/"
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
    # JSON inside a <script>: no "</" may close it early.
    data = json.dumps(state).replace("</", "<\\/")
    return _PAGE.replace("$STATE", data).replace("$STATIC", STATIC_PREFIX)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>thumbservice viewer</title>
<style>
html,body{margin:0;height:100%;font-family:sans-serif;background:#111;color:#eee}
header{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:center;padding:.5em .8em;
background:#222}
header h1{font-size:1.1em;margin:0}
#osd{position:absolute;top:4.2em;bottom:0;left:0;right:0}
#status{color:#f99}
label{white-space:nowrap}
input,select,button{font:inherit}
a{color:#9cf}
</style></head><body>
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
<script>
"use strict";
const STATE = $STATE;
const TOKEN_KEY = "thumbservice-token";
const options = Object.assign({}, STATE.options);
const status = document.getElementById("status");
window.thumbservice = {tilesLoaded: 0, fullResolutionTiles: 0, tilesFailed: 0, opened: 0};

function authorization() {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  if (!token) return null;
  return /^(Token|Bearer) /.test(token) ? token : "Token " + token;
}
function headers() {
  const value = authorization();
  return value ? {Authorization: value} : {};
}
function identifier() {
  const names = Object.keys(options).filter(n => options[n] !== "").sort();
  return [STATE.frame].concat(names.map(n => n + "=" + options[n])).join(";");
}
function fill(name) {
  const select = document.getElementById(name);
  const values = [""].concat(STATE.choices[name]);
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value || "default";
    select.appendChild(option);
  }
  select.value = options[name] || "";
  select.addEventListener("change", () => { options[name] = select.value; load(); });
}

const viewer = OpenSeadragon({
  id: "osd",
  prefixUrl: STATE.static + "images/",
  loadTilesWithAjax: true,
  ajaxHeaders: headers(),
  showNavigator: true,
  maxZoomPixelRatio: 4,
  immediateRender: false,
});
window.thumbservice.viewer = viewer;
viewer.addHandler("tile-loaded", event => {
  window.thumbservice.tilesLoaded += 1;
  if (event.tile.level === event.tiledImage.source.maxLevel) {
    window.thumbservice.fullResolutionTiles += 1;
  }
});
viewer.addHandler("tile-load-failed", () => { window.thumbservice.tilesFailed += 1; });
viewer.addHandler("open", () => { window.thumbservice.opened += 1; });

async function load() {
  const id = identifier();
  history.replaceState(null, "", STATE.view + id);
  status.textContent = "";
  const auth = headers();
  const frame = await fetch(STATE.view + id + "/frame.json", {headers: auth});
  if (!frame.ok) {
    const answer = await frame.json().catch(() => ({}));
    status.textContent = (answer.message || ("HTTP " + frame.status))
      + (auth.Authorization ? "" : ": a proprietary frame needs your archive token");
    viewer.close();
    return;
  }
  const about = await frame.json();
  document.getElementById("basename").textContent = about.basename || STATE.frame;
  document.getElementById("proposal").textContent = about.proposal_id || "-";
  document.getElementById("color-choice").hidden = !about.color_available;
  document.getElementById("color").checked = options.color === "true";
  const info = await fetch(STATE.iiif + id + "/info.json", {headers: auth});
  if (!info.ok) {
    const answer = await info.json().catch(() => ({}));
    status.textContent = answer.message || ("HTTP " + info.status);
    viewer.close();
    return;
  }
  viewer.setAjaxHeaders(auth, true);  // the navigator too
  viewer.open(await info.json());
}

fill("stretch");
fill("cmap");
document.getElementById("color").addEventListener("change", event => {
  options.color = event.target.checked ? "true" : "";
  // A colour composite has no colour map (the service refuses one): the select is let go.
  const cmap = document.getElementById("cmap");
  cmap.disabled = event.target.checked;
  if (cmap.disabled) { cmap.value = ""; options.cmap = ""; }
  load();
});
document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  const field = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, field.value.trim());
  field.value = "";
  load();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  load();
});
load();
</script>
</body></html>
"""
