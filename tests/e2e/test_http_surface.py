"""What every browser and operator sees: CORS, request ids, fixed pages, local store URLs."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.support.imaging import decode


async def test_cors_preflight_allows_authorization(client: TestClient) -> None:
    response = await client.options(
        "/101/",
        headers={
            "Origin": "https://archive.lco.global",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


async def test_cors_on_answers_and_errors(client: TestClient) -> None:
    ok = await client.get("/101/?width=50", headers={"Origin": "https://x.example"})
    bad = await client.get("/101/?width=x", headers={"Origin": "https://x.example"})
    for response in (ok, bad):
        assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) >= 16


async def test_fixed_pages(client: TestClient) -> None:
    index = await client.get("/")
    assert index.status == 200
    assert "text/html" in index.headers["Content-Type"]
    assert "/&lt;frame_id&gt;/" in await index.text()
    robots = await client.get("/robots.txt")
    assert "Disallow" in await robots.text()
    favicon = await client.get("/favicon.ico")
    assert favicon.status == 200
    assert (await favicon.read())[:4] == b"\x00\x00\x01\x00"
    health = await client.get("/healthz")
    assert await health.json() == {"status": "ok"}


async def test_local_store_urls_are_signed_and_expire(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(thumbnail_store="local", public_url="http://testserver")
    body = await (await client.get("/101/?width=80")).json()
    assert body["url"].startswith("http://testserver/thumbnails/101.")
    path = body["url"].removeprefix("http://testserver")
    served = await client.get(path)
    assert served.status == 200
    assert decode(await served.read()).size == (80, 60)
    forged = await client.get(path[:-4] + "0000")
    assert forged.status == 403
    expired = await client.get(path.replace("expires=", "expires=1").split("&")[0] + "&signature=x")
    assert expired.status == 403
    unsigned = await client.get(path.split("?")[0])
    assert unsigned.status == 403


async def test_openapi_describes_the_thumbnail_route(client: TestClient) -> None:
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    names = {p["name"] for p in spec["paths"]["/{frame}/"]["get"]["parameters"]}
    assert {
        "width",
        "height",
        "label",
        "color",
        "median",
        "percentile",
        "quality",
        "image",
    } <= names
