"""The deep-zoom viewer in a real browser (Debian's Chromium through Playwright), on the service
as `make run` serves it: it opens, zooms to full resolution with its tiles loading, shows a
proprietary frame with the owner's token and not without, and asks nothing of any other
machine. A screenshot of each is kept in `var/test-artifacts/` (TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Response

from tests.e2e.conftest import SampleService
from tests.support.browser import launched_browser, opened_page, origin, other_origin
from thumbservice.adapters.archive.dev.sample_archive import OWNER_TOKEN

pytestmark = pytest.mark.timeout(600)

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", "var/test-artifacts"))
TILE = re.compile(r"/iiif/3/[^/]+/(\d+),(\d+),(\d+),(\d+)/(\d+),(\d+)/0/default\.jpg$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_browser() as launched:
        yield launched


class Traffic:
    """Every request the page makes, and the IIIF answers it gets."""

    def __init__(self, page: Page) -> None:
        self.requests: list[Request] = []
        self.images: list[Response] = []
        self.console: list[str] = []
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", self._response)
        page.on("console", lambda message: self.console.append(message.text))

    def policy_violations(self) -> list[str]:
        """What the browser refused under the page's Content-Security-Policy."""
        return [line for line in self.console if "Content Security Policy" in line]

    def _response(self, response: Response) -> None:
        if "/iiif/3/" in response.url and not response.url.endswith("info.json"):
            self.images.append(response)

    def origins(self) -> set[str]:
        return {origin(request.url) for request in self.requests}


def _full_resolution(url: str) -> bool:
    """A tile of scale factor 1: a region drawn at its own size."""
    match = TILE.search(unquote(urlsplit(url).path))
    return bool(match) and match[3] == match[5] and match[4] == match[6]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with opened_page(browser, 1000, 800, 60_000) as opened:
        yield opened


def _opened(page: Page, tiles: int = 1) -> None:
    page.wait_for_function(
        f"() => window.thumbservice.opened >= 1 && window.thumbservice.tilesLoaded >= {tiles}"
    )


def _zoom_to_full_resolution(page: Page) -> None:
    page.evaluate(
        """() => {
          const viewer = window.thumbservice.viewer;
          const zoom = viewer.viewport.imageToViewportZoom(1.0);
          viewer.viewport.zoomTo(zoom, null, true);
        }"""
    )
    page.wait_for_function(
        "() => window.thumbservice.fullResolutionTiles >= 2"
        " && window.thumbservice.viewer.world.getItemAt(0).getFullyLoaded()"
    )


def test_the_viewer_zooms_to_full_resolution(page: Page, sample_service: SampleService) -> None:
    traffic = Traffic(page)
    frame_id = sample_service.frame_id()
    page.goto(f"{sample_service.url}/view/{frame_id}")
    _opened(page)
    record = next(r for r in sample_service.records if r["id"] == frame_id)
    assert page.locator("#basename").inner_text() == record["basename"]
    assert page.locator("#proposal").inner_text() == record["proposal_id"]
    _zoom_to_full_resolution(page)
    # The tiles fetched, by the page's own account (the browser's resource timing).
    fetched = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    full = [url for url in fetched if _full_resolution(url)]
    assert len(full) >= 2, fetched
    assert all(r.status == 200 for r in traffic.images)
    loaded = page.evaluate("() => window.thumbservice.tilesLoaded")
    assert loaded >= len(full) and page.evaluate("() => window.thumbservice.tilesFailed") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-full-resolution.png"))
    # Everything came from the service: its page, OpenSeadragon, its images, info.json, tiles;
    # and the page's policy (no inline script) refused nothing the viewer does.
    assert traffic.origins() - {"blob", "data"} == {sample_service.url}
    assert traffic.policy_violations() == []


def test_a_proprietary_frame_shows_with_its_token_only(
    page: Page, sample_service: SampleService
) -> None:
    traffic = Traffic(page)
    frame_id = sample_service.frame_id(private=True)
    page.goto(f"{sample_service.url}/view/{frame_id}")
    page.wait_for_function("() => document.getElementById('status').textContent.length > 0")
    assert "token" in page.locator("#status").inner_text()
    assert page.evaluate("() => window.thumbservice.opened") == 0
    assert traffic.images == []

    page.fill("#token", OWNER_TOKEN.removeprefix("Token "))
    page.click("#token-form button[type=submit]")
    _opened(page, tiles=4)
    assert page.locator("#proposal").inner_text() == "LCO2026B-999"
    assert page.evaluate("() => sessionStorage.getItem('thumbservice-token')")
    tiles = [r for r in traffic.images]
    assert tiles and all(r.status == 200 for r in tiles), [(r.url, r.status) for r in tiles]
    # Every tile carried the token, as Authorization.
    assert all(r.request.all_headers().get("authorization") == OWNER_TOKEN for r in tiles)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-proprietary.png"))

    page.click("#forget")
    page.wait_for_function("() => window.thumbservice.viewer.world.getItemCount() === 0")
    assert "token" in page.locator("#status").inner_text()
    assert traffic.origins() - {"blob", "data"} == {sample_service.url}
    assert traffic.policy_violations() == []


ELSEWHERE = """<!doctype html>
<html><head><meta charset="utf-8"><title>elsewhere</title></head><body>
<div id="osd" style="width:800px;height:600px"></div>
<script src="$SERVICE/static/openseadragon/openseadragon.min.js"></script>
<script>
// A page of another origin: OpenSeadragon on the service's tile source, with a token.
window.loaded = 0; window.failed = 0;
async function open(service, identifier, token) {
  const headers = {Authorization: token};
  const info = await fetch(`${service}/iiif/3/${identifier}/info.json`, {headers});
  if (!info.ok) return info.status;
  const viewer = OpenSeadragon({id: "osd", prefixUrl: `${service}/static/openseadragon/images/`,
                                loadTilesWithAjax: true, ajaxHeaders: headers});
  viewer.addHandler("tile-loaded", () => { window.loaded += 1; });
  viewer.addHandler("tile-load-failed", () => { window.failed += 1; });
  viewer.open(await info.json());
  window.viewer = viewer;
  return info.status;
}
</script></body></html>
"""


@pytest.fixture
def elsewhere(sample_service: SampleService) -> Iterator[str]:
    """A page served from another origin (another port) than the service."""
    body = ELSEWHERE.replace("$SERVICE", sample_service.url).encode()
    with other_origin(body, "zoom.html") as url:
        yield url


def test_openseadragon_on_another_origin_with_a_token(
    page: Page, sample_service: SampleService, elsewhere: str
) -> None:
    traffic = Traffic(page)
    page.goto(elsewhere)
    frame_id = sample_service.frame_id(private=True)
    unknown = page.evaluate(
        "([s, i]) => open(s, i, 'Token nobody')", [sample_service.url, frame_id]
    )
    assert unknown == 401  # the archive refuses an unknown token, and the refusal is passed on
    assert (
        page.evaluate("([s, i, t]) => open(s, i, t)", [sample_service.url, frame_id, OWNER_TOKEN])
        == 200
    )
    page.wait_for_function("() => window.loaded >= 4")
    assert page.evaluate("() => window.failed") == 0
    tiles = [r for r in traffic.images if r.request.method == "GET"]
    assert tiles and all(r.status == 200 for r in tiles)
    # The browser preflighted the tiles (Authorization from another origin), and was allowed.
    lines = [json.loads(line) for line in sample_service.log.read_text().splitlines()]
    preflights = [
        line for line in lines
        if line.get("method") == "OPTIONS" and "/iiif/3/" in line.get("path", "")
    ]  # fmt: skip
    assert preflights and all(line["status"] == 204 for line in preflights)
    assert traffic.origins() - {"blob", "data"} == {sample_service.url, elsewhere.rsplit("/", 1)[0]}
