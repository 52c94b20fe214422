"""HEAD of a thumbnail: the permission check and the cache lookup, never a render."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.http.conftest import OWNER, ClientFactory, Fakes


async def test_head_of_a_cold_image_does_not_render(client: TestClient, fakes: Fakes) -> None:
    response = await client.head("/101/?width=80&image=true")
    assert response.status == 200
    assert response.headers["X-Thumbnail-Cache"] == "miss"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert "ETag" not in response.headers
    assert "Content-Length" not in response.headers  # only the render would tell it
    assert fakes.renderer.calls == []
    assert fakes.archive.downloads == {}
    assert fakes.store.puts == 0


async def test_head_of_a_cached_image_answers_its_gets_headers(
    client: TestClient, fakes: Fakes
) -> None:
    got = await client.get("/101/?width=80&image=true")
    body = await got.read()
    response = await client.head("/101/?width=80&image=true")
    assert response.status == 200
    assert response.headers["X-Thumbnail-Cache"] == "hit"
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["ETag"] == got.headers["ETag"]
    assert len(fakes.renderer.calls) == 1


async def test_head_of_a_cold_json_answer_does_not_render(client: TestClient, fakes: Fakes) -> None:
    response = await client.head("/101/?width=81")
    assert response.status == 200
    assert response.headers["X-Thumbnail-Cache"] == "miss"
    assert fakes.renderer.calls == []


async def test_head_still_checks_permission(client: TestClient, fakes: Fakes) -> None:
    assert (await client.head("/104/?image=true")).status == 404
    owner = await client.head("/104/?image=true", headers={"Authorization": OWNER})
    assert owner.status == 200
    assert fakes.renderer.calls == []


async def test_head_of_iiif_views_and_info_never_renders(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    """The IIIF routes follow the same rule: the permission check (and a view's ETag, which
    the GET will carry), never a download or a render."""
    client = await make_client()
    tile = "/iiif/3/101/0,0,512,512/256,/0/default.png"
    head = await client.head(tile)
    assert head.status == 200 and head.headers["Content-Type"] == "image/png"
    info = await client.head("/iiif/3/101/info.json")
    assert info.status == 200 and info.headers["Content-Type"].startswith("application/ld+json")
    assert fakes.renderer.view_calls == 0 and fakes.archive.downloads == {}
    assert (await client.head("/iiif/3/104/info.json")).status == 404
    assert (await client.head("/iiif/3/104/full/max/0/default.jpg")).status == 404
    got = await client.get(tile)
    assert got.headers["ETag"] == head.headers["ETag"]
    assert fakes.renderer.view_calls == 1
