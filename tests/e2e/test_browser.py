"""A real browser (Debian's Chromium, driven by Playwright) on the service's pages.

Two users: a person on /docs who fills in a frame and the parameters and sees the thumbnail,
and a page of another origin that does what the archive's front end does (a `fetch` with the
caller's `Authorization`, which makes the browser send a CORS preflight, then an `<img>` of
the returned URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import SampleService
from tests.support.browser import launched_browser, opened_page, origin, other_origin
from thumbservice.adapters.archive.dev.sample_archive import OWNER_TOKEN

# Installing Chromium on a machine that lacks it takes minutes; the pages themselves, seconds.
pytestmark = pytest.mark.timeout(600)

FRONT_END = """<!doctype html>
<html><head><meta charset="utf-8"><title>frames</title></head><body>
<img id="thumbnail" alt="">
<script>
// What the archive's frame list does for each frame it shows.
async function showThumbnail(service, frameId, filename, token) {
  const query = `width=200&height=200&label=${encodeURIComponent(filename)}`;
  const anonymous = await fetch(`${service}/${frameId}/?${query}`);
  const answer = await fetch(`${service}/${frameId}/?${query}`, {
    headers: {Authorization: token},
  });
  const body = await answer.json();
  const img = document.getElementById("thumbnail");
  img.src = body.url;
  await img.decode();
  return {
    anonymous: anonymous.status, status: answer.status, propid: body.propid,
    width: img.naturalWidth, height: img.naturalHeight,
  };
}
</script></body></html>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_browser() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with opened_page(browser, 1200, 1400, 30_000) as opened:
        yield opened


@pytest.fixture
def front_end() -> Iterator[str]:
    """A page served from another origin (another port) than the service."""
    with other_origin(FRONT_END.encode(), "frames.html") as url:
        yield url


def test_a_person_tries_a_thumbnail_on_the_docs_page(
    page: Page, sample_service: SampleService
) -> None:
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(origin(request.url)))
    page.goto(f"{sample_service.url}/docs")

    # The proprietary frame: the token goes in through the page's Authorize dialog.
    page.click("button.authorize")
    page.fill(".auth-container input", OWNER_TOKEN)
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")

    operation = page.locator("#operations-thumbnails-thumbnail")
    if not operation.locator("tr[data-param-name='frame'] input").is_visible():
        operation.locator(".opblock-summary").click()
    operation.locator("tr[data-param-name='frame'] input").fill(
        str(sample_service.frame_id(private=True))
    )
    operation.locator("tr[data-param-name='width'] input").fill("300")
    operation.locator("tr[data-param-name='label'] input").fill("So many stars")
    operation.locator("tr[data-param-name='format'] select").select_option("png")
    operation.locator("tr[data-param-name='image'] select").select_option("true")
    operation.locator("button.execute").click()

    image = operation.locator(".live-responses-table img")
    image.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert (width, height) == (200, 200)  # the 2048x2048 frame in the default 200 px box
    status = operation.locator(".live-responses-table .response .response-col_status")
    assert status.first.inner_text().strip() == "200"
    assert "format=png" in operation.locator(".request-url").inner_text()
    # Its scripts, styles, document and calls: all from the service (the image is a blob:).
    assert origins - {"blob", "data"} == {origin(sample_service.url)}


def test_a_front_end_on_another_origin_shows_a_thumbnail(
    page: Page, sample_service: SampleService, front_end: str
) -> None:
    assert urlsplit(front_end).netloc != urlsplit(sample_service.url).netloc
    page.goto(front_end)
    frame_id = sample_service.frame_id(private=True)
    filename = next(r["filename"] for r in sample_service.records if r["id"] == frame_id)
    shown = page.evaluate(
        "([service, id, filename, token]) => showThumbnail(service, id, filename, token)",
        [sample_service.url, frame_id, filename, OWNER_TOKEN],
    )
    assert shown["anonymous"] == 404  # the archive shows a proprietary frame to its owner only
    assert shown["status"] == 200 and shown["propid"]
    assert max(shown["width"], shown["height"]) == 200
    # The browser asked first, as it must for a request with Authorization.
    lines = [json.loads(line) for line in sample_service.log.read_text().splitlines()]
    assert any(line.get("event") == "request" and line.get("method") == "OPTIONS" for line in lines)
