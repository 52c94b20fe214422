"""Black-and-white thumbnails end to end: real FITS, real fits2image, a real S3 endpoint."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestClient

from tests.support.archive_server import ArchiveStub
from tests.support.frames import OWNER
from tests.support.imaging import decode, region_difference


async def fetch(url: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


async def test_json_url_serves_a_jpeg_of_the_requested_size(client: TestClient) -> None:
    response = await client.get("/101/", params={"width": "300", "height": "300"})
    assert response.status == 200
    body = await response.json()
    assert body["propid"] == "LCOEPO2018B-002"
    assert "X-Amz-Signature=" in body["url"] and "X-Amz-Expires=604800" in body["url"]
    status, data, content_type = await fetch(body["url"])
    assert (status, content_type) == (200, "image/jpeg")
    image = decode(data)
    assert max(image.size) == 300
    assert image.size == (300, 225)  # an 800x600 frame keeps its aspect ratio


async def test_the_box_bounds_both_sides(client: TestClient) -> None:
    response = await client.get("/101/", params={"width": "400", "height": "150", "image": "true"})
    assert decode(await response.read()).size == (200, 150)


async def test_image_true_answers_the_jpeg_with_caching_headers(client: TestClient) -> None:
    response = await client.get("/101", params={"width": "120", "image": "true"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"].startswith("private")
    data = await response.read()
    assert int(response.headers["Content-Length"]) == len(data)
    assert decode(data).size == (120, 90)
    etag = response.headers["ETag"]
    again = await client.get(
        "/101", params={"width": "120", "image": "true"}, headers={"If-None-Match": etag}
    )
    assert again.status == 304


async def test_basename_names_the_same_thumbnail(client: TestClient, archive: ArchiveStub) -> None:
    by_id = await (await client.get("/101/", params={"width": "64"})).json()
    by_name = await (
        await client.get("/ogg1m001-fa16-20190321-0101-e91/", params={"width": "64"})
    ).json()
    assert by_id["url"].split("?")[0] == by_name["url"].split("?")[0]
    assert archive.downloads[101] == 1
    assert any("basename_exact=ogg1m001-fa16-20190321-0101-e91" in p for p, _ in archive.lookups)


async def test_a_second_identical_request_does_not_download_again(
    client: TestClient, archive: ArchiveStub
) -> None:
    for _ in range(3):
        response = await client.get("/101/", params={"width": "100"})
        assert response.status == 200
    assert archive.downloads[101] == 1
    assert len([p for p, _ in archive.lookups if p.startswith("/frames/101/")]) == 3
    other = await client.get("/101/", params={"width": "101"})
    assert other.status == 200
    assert archive.downloads[101] == 2


async def test_proprietary_frames_never_leak(client: TestClient, archive: ArchiveStub) -> None:
    anonymous = await client.get("/102/")
    assert anonymous.status == 404
    assert "message" in await anonymous.json()
    owner = await client.get("/102/", headers={"Authorization": OWNER})
    assert owner.status == 200
    assert (await owner.json())["propid"] == "LCO2026B-999"
    for params in ({}, {"image": "true"}):
        after = await client.get("/102/", params=params)
        assert after.status == 404
    stranger = await client.get("/102/", headers={"Authorization": "Token someone-else"})
    assert stranger.status == 401
    assert (await stranger.json())["response"] == {"detail": "Invalid token."}
    # The caller's header reached the archive unchanged, and never the file store.
    assert (("/frames/102/", OWNER)) in archive.lookups
    assert set(archive.download_auth_headers) == {None}


async def test_the_label_really_appears(client: TestClient) -> None:
    plain = decode(await (await client.get("/101/?width=400&image=true")).read())
    labelled = decode(
        await (await client.get("/101/?width=400&image=true&label=So%20many%20stars")).read()
    )
    width, height = plain.size
    assert region_difference(plain, labelled, (0, height - 28, 150, height)) > 20
    assert region_difference(plain, labelled, (width - 100, 0, width, 100)) < 2


async def test_a_raw_plain_fits_frame(client: TestClient) -> None:
    response = await client.get("/ogg1m001-fa16-20190321-0103-e00/?image=true&width=64")
    assert response.status == 200
    assert decode(await response.read()).size == (64, 64)


async def test_json_and_image_share_the_stored_object(
    client: TestClient, archive: ArchiveStub
) -> None:
    url = (await (await client.get("/101/?width=77")).json())["url"]
    image = await (await client.get("/101/?width=77&image=true")).read()
    assert (await fetch(url))[1] == image
    assert archive.downloads[101] == 1


async def test_each_format_is_stored_in_s3_under_its_name_and_type(client: TestClient) -> None:
    for kind, pillow_name, media_type in [
        ("png", "PNG", "image/png"),
        ("webp", "WEBP", "image/webp"),
        ("jpeg", "JPEG", "image/jpeg"),
    ]:
        response = await client.get("/101/", params={"width": "160", "format": kind})
        assert response.status == 200, await response.text()
        url = (await response.json())["url"]
        assert url.split("?")[0].endswith("." + ("jpg" if kind == "jpeg" else kind))
        status, data, content_type = await fetch(url)
        assert (status, content_type) == (200, media_type)
        assert decode(data, pillow_name).size == (160, 120)
