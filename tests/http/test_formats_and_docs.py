"""Formats, long labels, the OpenAPI document and the /docs page, on the HTTP surface."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from tests.http.conftest import ClientFactory, Fakes
from thumbservice.domain.display import NAMES as DISPLAY_NAMES
from thumbservice.domain.spec import MAX_LABEL_LENGTH, ImageFormat
from thumbservice.entrypoints import docs

README_STATUSES = {"200", "304", "400", "401", "403", "404", "422", "429", "502", "503", "504"}


@pytest.mark.parametrize("kind", list(ImageFormat))
async def test_each_format_has_its_content_type_key_and_stored_type(
    client: TestClient, fakes: Fakes, kind: ImageFormat
) -> None:
    answer = await client.get(f"/101/?image=true&format={kind.value}")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == kind.media_type
    etag = answer.headers["ETag"]
    again = await client.get(
        f"/101/?image=true&format={kind.value}", headers={"If-None-Match": etag}
    )
    assert again.status == 304
    [(key, (_, stored_type))] = fakes.store.objects.items()
    assert key.endswith(f".{kind.extension}") and stored_type == kind.media_type
    assert fakes.renderer.calls[-1][1].format is kind


async def test_without_a_format_the_answer_is_the_original_jpeg(
    client: TestClient, fakes: Fakes
) -> None:
    answer = await client.get("/101/?image=true")
    assert answer.headers["Content-Type"] == "image/jpeg"
    body = await (await client.get("/101/")).json()
    assert body["url"].split("?")[0].endswith(".jpg")


async def test_an_unknown_format_is_a_400_naming_the_allowed_ones(client: TestClient) -> None:
    answer = await client.get("/101/?format=gif")
    assert answer.status == 400
    assert (await answer.json())["message"] == "format must be one of jpeg, png, webp, got 'gif'"


@pytest.mark.parametrize("kind", list(ImageFormat))
async def test_the_local_store_serves_each_format_with_its_type(
    make_client: ClientFactory, kind: ImageFormat
) -> None:
    client = await make_client(real_store=True, thumbnail_store="local")
    body = await (await client.get(f"/101/?format={kind.value}")).json()
    path = body["url"].removeprefix("http://testserver")
    assert path.split("?")[0].endswith(f".{kind.extension}")
    served = await client.get(path)
    assert served.status == 200
    assert served.headers["Content-Type"] == kind.media_type


@pytest.mark.parametrize("character", ["a", " ", "é", "星", "🔭"])
async def test_a_label_of_the_longest_length_passes_whatever_its_script(
    client: TestClient, fakes: Fakes, character: str
) -> None:
    label = character * (MAX_LABEL_LENGTH - 1) + "x"
    answer = await client.get(f"/101/?width=300&label={quote(label, safe='')}")
    assert answer.status == 200, await answer.text()
    assert fakes.renderer.calls[-1][1].label == label


async def test_a_label_beyond_the_limit_is_a_400_that_says_the_limit(client: TestClient) -> None:
    answer = await client.get(f"/101/?label={'x' * (MAX_LABEL_LENGTH + 1)}")
    assert answer.status == 400
    message = (await answer.json())["message"]
    assert f"at most {MAX_LABEL_LENGTH} characters" in message


async def test_the_openapi_document_validates_and_is_complete(client: TestClient) -> None:
    spec = await (await client.get("/openapi.json")).json()
    validate(spec)
    thumbnail = spec["paths"]["/{frame}/"]["get"]
    names = {p["name"] for p in thumbnail["parameters"]}
    assert names == {
        "frame",
        "width",
        "height",
        "label",
        "color",
        "median",
        "percentile",
        "quality",
        "format",
        "image",
        "If-None-Match",
        *DISPLAY_NAMES,
    }
    # The Authorization header is a security scheme: OpenAPI ignores a parameter of that name.
    assert thumbnail["security"] == [{}, {"archiveToken": []}]
    scheme = spec["components"]["securitySchemes"]["archiveToken"]
    assert (scheme["in"], scheme["name"]) == ("header", "Authorization")
    assert set(thumbnail["responses"]) >= README_STATUSES
    assert thumbnail["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    assert set(thumbnail["responses"]["200"]["content"]) == {
        "application/json",
        "image/jpeg",
        "image/png",
        "image/webp",
    }
    label = next(p for p in thumbnail["parameters"] if p["name"] == "label")
    assert label["schema"]["maxLength"] == MAX_LABEL_LENGTH
    assert set(spec["paths"]) == {
        "/{frame}/",
        "/thumbnails/{key}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/",
        "/robots.txt",
        "/favicon.ico",
        "/iiif/3/{identifier}",
        "/iiif/3/{identifier}/info.json",
        "/iiif/3/{identifier}/{region}/{size}/{rotation}/{file}",
        "/view/{identifier}",
        "/view/{identifier}/frame.json",
    }


async def test_every_route_of_the_app_is_in_the_document(make_client: ClientFactory) -> None:
    client = await make_client(thumbnail_store="local")
    spec = await (await client.get("/openapi.json")).json()
    # the same thumbnail; the pages' files
    undocumented = {
        "/{frame}",
        "/docs/static/{name}",
        "/static/openseadragon/{name}",
        "/static/viewer.js",
    }
    routes = {resource.canonical for resource in client.app.router.resources()}
    assert routes - undocumented == set(spec["paths"])


async def test_the_docs_page_and_its_files_come_from_the_service(client: TestClient) -> None:
    page = await client.get("/docs")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    html = await page.text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not s.startswith(("http:", "https:", "//")) for s in sources)
    for source in sources:
        if source.startswith("docs/static/"):
            asset = await client.get(f"/{source}")
            assert asset.status == 200, source
            assert asset.headers["Cache-Control"].startswith("public")
    script = await (await client.get("/docs/static/docs.js")).text()
    assert 'url: "openapi.json"' in script and "validatorUrl: null" in script
    bundle = await (await client.get("/docs/static/swagger-ui-bundle.js")).text()
    assert "SwaggerUIBundle" in bundle and len(bundle) > 100_000


@pytest.mark.parametrize("name", ["../docs.py", "swagger-editor-bundle.js", "index.html", "x"])
async def test_only_the_pages_own_files_are_served(client: TestClient, name: str) -> None:
    answer = await client.get(f"/docs/static/{quote(name, safe='')}")
    assert answer.status == 404
    assert answer.headers["Content-Type"].startswith("application/json")
    assert set(docs.asset_names()) >= {"swagger-ui-bundle.js", "swagger-ui.css", "docs.js"}


async def test_the_short_page_links_to_the_docs(client: TestClient) -> None:
    html = await (await client.get("/")).text()
    assert 'href="docs"' in html and "format" in html
