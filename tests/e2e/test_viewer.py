"""The deep-zoom viewer in a real browser (Debian's Chromium through Playwright), on the service
as `make run` serves it: it opens, zooms to full resolution with its tiles loading, shows a
proprietary frame with the owner's token and not without, and asks nothing of any other
machine. A screenshot of each is kept in `var/test-artifacts/` (TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Response, sync_playwright

from tests.e2e.conftest import SampleService
from tests.support.browser import LAUNCH_ARGS, ensure_chromium
from thumbservice.adapters.archive.dev.sample_archive import OWNER_TOKEN

pytestmark = pytest.mark.timeout(600)

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", "var/test-artifacts"))
TILE = re.compile(r"/iiif/3/[^/]+/(\d+),(\d+),(\d+),(\d+)/(\d+),(\d+)/0/default\.jpg$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        yield launched
        launched.close()


class Traffic:
    """Every request the page makes, and the IIIF answers it gets."""

    def __init__(self, page: Page) -> None:
        self.requests: list[Request] = []
        self.images: list[Response] = []
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", self._response)

    def _response(self, response: Response) -> None:
        if "/iiif/3/" in response.url and not response.url.endswith("info.json"):
            self.images.append(response)

    def origins(self) -> set[str]:
        found = set()
        for request in self.requests:
            parts = urlsplit(request.url)
            found.add(f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme)
        return found

    def full_resolution_tiles(self) -> list[Response]:
        """Tiles of scale factor 1: a region drawn at its own size."""
        shown = []
        for response in self.images:
            match = TILE.search(unquote(urlsplit(response.url).path))
            if match and match[3] == match[5] and match[4] == match[6]:
                shown.append(response)
        return shown


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    yield opened
    context.close()


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
    page.wait_for_function("() => window.thumbservice.viewer.world.getItemAt(0).getFullyLoaded()")


def test_the_viewer_zooms_to_full_resolution(page: Page, sample_service: SampleService) -> None:
    traffic = Traffic(page)
    frame_id = sample_service.frame_id()
    page.goto(f"{sample_service.url}/view/{frame_id}")
    _opened(page)
    record = next(r for r in sample_service.records if r["id"] == frame_id)
    assert page.locator("#basename").inner_text() == record["basename"]
    assert page.locator("#proposal").inner_text() == record["proposal_id"]
    _zoom_to_full_resolution(page)
    full = traffic.full_resolution_tiles()
    assert len(full) >= 2, [r.url for r in traffic.images]
    assert all(r.status == 200 for r in traffic.images)
    loaded = page.evaluate("() => window.thumbservice.tilesLoaded")
    assert loaded >= len(full) and page.evaluate("() => window.thumbservice.tilesFailed") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-full-resolution.png"))
    # Everything came from the service: its page, OpenSeadragon, its images, info.json, tiles.
    assert traffic.origins() - {"blob", "data"} == {sample_service.url}


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
