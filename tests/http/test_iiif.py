"""The IIIF routes and the viewer over the real app and container, with the ports' fakes."""

from __future__ import annotations

import pytest

from tests.http.conftest import OWNER, ClientFactory, Fakes
from tests.support.fakes import record
from thumbservice.domain.iiif import MEDIA_TYPE


async def test_info_json(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/iiif/3/101/info.json", headers={"Accept": "application/ld+json"})
    assert response.status == 200
    assert response.headers["Content-Type"] == MEDIA_TYPE
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "private" in response.headers["Cache-Control"]
    body = await response.json(content_type=None)
    assert body["id"] == "http://testserver/iiif/3/101"
    assert (body["width"], body["height"]) == (3000, 2000)
    assert body["tiles"][0] == {"width": 512, "height": 512, "scaleFactors": [1, 2, 4, 8]}


async def test_the_id_is_canonical_and_percent_encoded_forms_are_accepted(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    response = await client.get("/iiif/3/101%3Bmedian%3Dyes%3Bcolor%3Dfalse/info.json")
    body = await response.json(content_type=None)
    assert body["id"] == "http://testserver/iiif/3/101;median=true"


async def test_the_id_follows_the_request_or_a_trusted_proxy(
    make_client: ClientFactory,
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "zoom.example:8443"}
    client = await make_client(public_url=None)
    body = await (await client.get("/iiif/3/101/info.json", headers=forwarded)).json(
        content_type=None
    )
    assert body["id"] == f"http://{client.host}:{client.port}/iiif/3/101"  # not trusted
    trusting = await make_client(public_url=None, trust_forwarded_headers=True)
    body = await (await trusting.get("/iiif/3/101/info.json", headers=forwarded)).json(
        content_type=None
    )
    assert body["id"] == "https://zoom.example:8443/iiif/3/101"


async def test_the_base_uri_redirects_to_info_json(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/iiif/3/101;color=false", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "http://testserver/iiif/3/101/info.json"


async def test_a_tile(make_client: ClientFactory, fakes: Fakes) -> None:
    client = await make_client()
    response = await client.get("/iiif/3/101/2560,1536,440,464/440,464/0/default.jpg")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"].startswith("private")
    assert await response.read() == b"VIEW Box(x=2560, y=1536, width=440, height=464) (440, 464)"
    etag = response.headers["ETag"]
    again = await client.get(
        "/iiif/3/101/2560,1536,440,464/440,464/0/default.jpg", headers={"If-None-Match": etag}
    )
    assert again.status == 304 and again.headers["ETag"] == etag
    assert fakes.renderer.view_calls == 1
    png = await client.get("/iiif/3/101/full/max/0/gray.png")
    assert png.headers["Content-Type"] == "image/png"


async def test_a_hidden_frame_is_a_404_for_info_and_tiles(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    client = await make_client()
    for path in ("/iiif/3/104/info.json", "/iiif/3/104/0,0,512,512/512,512/0/default.jpg"):
        hidden = await client.get(path)
        assert hidden.status == 404
        assert "message" in await hidden.json()
        assert (await client.get(path, headers={"Authorization": OWNER})).status == 200
    # The archive was asked with the caller's header each time, never the owner's for others.
    assert ("get_frame", 104, None) in fakes.archive.calls
    assert ("get_frame", 104, OWNER) in fakes.archive.calls


async def test_archive_answers_are_reused_per_caller(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    client = await make_client()
    for _ in range(5):
        assert (await client.get("/iiif/3/101/full/max/0/default.jpg")).status == 200
    for _ in range(3):
        await client.get("/iiif/3/101/info.json", headers={"Authorization": OWNER})
    lookups = [c for c in fakes.archive.calls if c[0] == "get_frame"]
    assert lookups == [("get_frame", 101, None), ("get_frame", 101, OWNER)]
    off = await make_client(iiif_archive_reuse_seconds=0)
    fakes.archive.calls.clear()
    for _ in range(3):
        await off.get("/iiif/3/101/info.json")
    assert len(fakes.archive.calls) == 3


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/iiif/3/101/nowhere/max/0/default.jpg", 400),
        ("/iiif/3/101/full/full/0/default.jpg", 400),
        ("/iiif/3/101/full/max/33/default.jpg", 400),
        ("/iiif/3/101/full/max/0/sepia.jpg", 400),
        ("/iiif/3/101/full/max/0/default.tif", 400),
        ("/iiif/3/101/full/4000,/0/default.jpg", 400),
        ("/iiif/3/101/3000,0,5,5/max/0/default.jpg", 400),
        ("/iiif/3/999/full/max/0/default.jpg", 404),
        ("/iiif/3/a%2Fb/full/max/0/default.jpg", 404),
        ("/iiif/3/a/b/full/max/0/default.jpg", 404),
        ("/iiif/3/101;width=5/info.json", 400),
    ],
)
async def test_iiif_errors_are_json(make_client: ClientFactory, path: str, status: int) -> None:
    client = await make_client()
    response = await client.get(path)
    assert response.status == status
    assert (await response.json())["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_preflight_names_authorization(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.options(
        "/iiif/3/104/0,0,512,512/512,512/0/default.jpg",
        headers={
            "Origin": "http://elsewhere.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status == 204
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # No catch-all OPTIONS route: an unknown GET is still a 404, not a 405.
    assert (await client.get("/iiif/3/101/x/y")).status == 404


async def test_the_viewer_page_and_its_files(make_client: ClientFactory, fakes: Fakes) -> None:
    fakes.archive.add(record(201, request_id=77, primary_optical_element="rp"))
    fakes.archive.add(record(202, request_id=77, primary_optical_element="V"))
    fakes.archive.add(record(203, request_id=77, primary_optical_element="B"))
    client = await make_client()
    page = await client.get("/view/201;color=true")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert "/static/openseadragon/openseadragon.min.js" in html
    assert '"options": {"color": "true"}' in html
    # No inline script: the page's state is a JSON data block, its code the service's own file.
    assert "<script>" not in html and '<script type="application/json" id="state">' in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy.split(";")[1]
    assert "frame-ancestors 'none'" in policy
    own = await client.get("/static/viewer.js")
    code = await own.text()
    assert own.status == 200 and own.content_type == "application/javascript"
    assert "sessionStorage" in code and "ajaxHeaders" in code
    assert "http" not in code  # nothing fetched from elsewhere
    script = await client.get("/static/openseadragon/openseadragon.min.js")
    assert script.status == 200 and len(await script.read()) > 300_000
    assert (await client.get("/static/openseadragon/images/zoomin_rest.png")).status == 200
    licence = await (await client.get("/static/openseadragon/LICENSE.txt")).text()
    assert "OpenSeadragon" in licence
    assert (await client.get("/static/openseadragon/../app.py")).status == 404
    about = await (await client.get("/view/201/frame.json")).json()
    assert about == {
        "basename": fakes.archive.records[201]["basename"],
        "proposal_id": "LCOEPO2018B-002",
        "color_available": True,
    }
    assert (await client.get("/view/104/frame.json")).status == 404
    owned = await client.get("/view/104/frame.json", headers={"Authorization": OWNER})
    assert (await owned.json())["color_available"] is False


async def test_the_index_links_to_the_viewer(make_client: ClientFactory) -> None:
    html = await (await (await make_client()).get("/")).text()
    assert '<a href="/view/101">frame 101</a>' in html and "/iiif/3/" in html
