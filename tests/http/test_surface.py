"""What every browser, script and operator sees of the HTTP surface, with the ports faked."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from aiohttp.test_utils import TestClient

from tests.http.conftest import OWNER, ClientFactory, Fakes
from tests.support.fakes import record
from tests.support.metrics import metric
from thumbservice.domain import errors


async def json_error(client: TestClient, path: str, **kw: object) -> tuple[int, dict]:
    response = await client.get(path, **kw)  # type: ignore[arg-type]
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status, await response.json()


# The status table of the README, one domain error at a time.
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.FrameNotFound("Frame 101 not found"), 404),
        (errors.ArchiveRefused("The archive refused the request (403)", 403), 403),
        (errors.ArchiveRefused("throttled", 429), 429),
        (errors.ArchiveUnavailable("The archive answered 500"), 502),
        (errors.ArchiveTimeout("The archive did not answer within 10 s"), 504),
    ],
)
async def test_archive_errors_map_to_the_status_table(
    client: TestClient, fakes: Fakes, error: errors.ThumbnailError, status: int
) -> None:
    fakes.archive.fail_with = error
    got, body = await json_error(client, "/101/")
    assert (got, body["message"]) == (status, error.message)


async def test_a_refusal_passes_the_archives_answer_on(client: TestClient, fakes: Fakes) -> None:
    fakes.archive.fail_with = errors.ArchiveRefused("bad token", 401, {"detail": "Invalid token."})
    status, body = await json_error(client, "/101/")
    assert status == 401
    assert body["response"] == {"detail": "Invalid token."}


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (errors.UnreadableFrame("not a FITS image"), 422, None),
        (errors.FrameTooLarge("too many pixels"), 422, None),
        (errors.RenderFailed("A render worker died"), 503, "7"),
        (errors.Overloaded("busy", retry_after=9), 503, "9"),
    ],
)
async def test_render_errors_map_to_the_status_table(
    make_client: ClientFactory,
    fakes: Fakes,
    error: errors.ThumbnailError,
    status: int,
    retry_after: str | None,
) -> None:
    client = await make_client(retry_after=7)
    fakes.renderer.fail_with = error
    response = await client.get("/101/")
    assert response.status == status
    assert (await response.json())["message"] == error.message
    assert response.headers.get("Retry-After") == retry_after


async def test_rules_refuse_with_400(client: TestClient, fakes: Fakes) -> None:
    fakes.archive.add(record(110, configuration_type="CATALOG"))
    fakes.archive.add(record(111, filename="bundle.tar.gz"))
    assert (await json_error(client, "/110/"))[0] == 400
    status, body = await json_error(client, "/111/")
    assert status == 400 and ".fits" in body["message"]


async def test_a_basename_matching_several_frames_is_404(client: TestClient) -> None:
    status, body = await json_error(client, "/twin/")
    assert status == 404 and "2 frames" in body["message"]


async def test_store_down_json_is_503_and_image_still_answers(
    client: TestClient, fakes: Fakes
) -> None:
    fakes.store.down = True
    status, body = await json_error(client, "/101/")
    assert status == 503 and body["message"]
    image = await client.get("/101/?image=true")
    assert image.status == 200
    assert await image.read() == b"JPEG 200x200 of 1"


async def test_the_deadline_is_504(make_client: ClientFactory, fakes: Fakes) -> None:
    client = await make_client(request_deadline=0.2)
    fakes.renderer.gate = asyncio.Event()  # never opened: the render outlives the deadline
    status, body = await json_error(client, "/101/")
    assert status == 504 and "deadline" in body["message"]


@pytest.mark.parametrize(
    "query",
    [
        "width=abc",
        "width=1e3",
        "width=2.5",
        "width=-5",
        "width=0",
        "height=5001",
        "quality=0",
        "quality=101",
        "percentile=0",
        "percentile=100.5",
        "percentile=nan",
        "color=perhaps",
        "image=sure",
        "median=2",
    ],
)
async def test_bad_parameters_are_400_before_the_archive_is_asked(
    client: TestClient, fakes: Fakes, query: str
) -> None:
    status, body = await json_error(client, f"/101/?{query}")
    assert status == 400 and body["message"]
    assert fakes.archive.calls == []


async def test_bad_frame_names_are_400(client: TestClient) -> None:
    for path in ("/bad%20name/", "/0/", "/-e91/"):
        assert (await json_error(client, path))[0] == 400, path


async def test_unknown_paths_and_methods_are_json(client: TestClient) -> None:
    status, body = await json_error(client, "/a/b/c")
    assert status == 404 and "frame" in body["message"]
    response = await client.post("/101/")
    assert response.status == 405
    assert (await response.json())["message"]


async def test_cors_preflight_allows_authorization(client: TestClient) -> None:
    response = await client.options(
        "/101/",
        headers={
            "Origin": "https://archive.lco.global",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


async def test_cors_on_answers_and_errors(client: TestClient) -> None:
    origin = {"Origin": "https://x.example"}
    for path in ("/101/?width=50", "/101/?width=x", "/999/", "/a/b/c"):
        response = await client.get(path, headers=origin)
        assert response.headers["Access-Control-Allow-Origin"] == "*", path
        assert "ETag" in response.headers["Access-Control-Expose-Headers"]


async def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) >= 16
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["X-Request-ID"] != "a b\tc"
    failed = await client.get("/101/?width=x", headers={"X-Request-ID": "err-1"})
    assert failed.headers["X-Request-ID"] == "err-1"


async def test_image_answers_with_etag_and_304_after_the_permission_check(
    client: TestClient, fakes: Fakes
) -> None:
    first = await client.get("/104/?image=true", headers={"Authorization": OWNER})
    assert first.status == 200
    assert first.headers["Content-Type"] == "image/jpeg"
    assert first.headers["Cache-Control"] == "private, max-age=86400"
    assert first.headers["Vary"] == "Authorization"
    etag = first.headers["ETag"]
    lookups = len(fakes.archive.calls)
    again = await client.get(
        "/104/?image=true", headers={"Authorization": OWNER, "If-None-Match": etag}
    )
    assert again.status == 304
    assert len(fakes.archive.calls) == lookups + 1  # asked again: the permission check
    stranger = await client.get("/104/?image=true", headers={"If-None-Match": etag})
    assert stranger.status == 404


async def test_fixed_pages(client: TestClient) -> None:
    index = await client.get("/")
    assert index.status == 200 and "text/html" in index.headers["Content-Type"]
    assert "/&lt;frame_id&gt;/" in await index.text()
    robots = await client.get("/robots.txt")
    assert "Disallow" in await robots.text()
    favicon = await client.get("/favicon.ico")
    assert (await favicon.read())[:4] == b"\x00\x00\x01\x00"
    assert await (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readiness_reports_a_store_that_is_down(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    fakes.store.down = True
    client = await make_client(readiness_cache_seconds=0)
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["archive"] == "ok" and body["store"] != "ok"


async def test_metrics_count_requests(client: TestClient) -> None:
    await client.get("/101/")
    text = await (await client.get("/metrics")).text()
    assert 'thumbservice_cache_lookups_total{result="miss"} 1.0' in text
    assert 'thumbservice_requests_total{route="/{frame}/",status="200"} 1.0' in text


async def test_openapi_describes_the_thumbnail_route(client: TestClient) -> None:
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    names = {p["name"] for p in spec["paths"]["/{frame}/"]["get"]["parameters"]}
    assert {"width", "height", "label", "color", "median", "percentile", "quality", "image"} <= (
        names
    )
    frame = spec["paths"]["/{frame}/"]["get"]["parameters"][0]
    by_id, by_name = frame["schema"]["anyOf"]
    assert (by_id["minimum"], by_id["maximum"]) == (1, 2**63 - 1)
    assert by_name["pattern"].startswith("^[A-Za-z0-9]")
    assert {"/", "/robots.txt", "/thumbnails/{key}", "/healthz", "/readyz"} <= set(spec["paths"])


async def test_local_store_urls_are_signed_and_expire(make_client: ClientFactory) -> None:
    client = await make_client(real_store=True, thumbnail_store="local")
    body = await (await client.get("/101/?width=80")).json()
    assert body["url"].startswith("http://testserver/thumbnails/101.")
    path = body["url"].removeprefix("http://testserver")
    served = await client.get(path)
    assert served.status == 200
    assert await served.read() == b"JPEG 80x200 of 1"
    assert served.headers["Content-Type"] == "image/jpeg"
    key, query = path.split("?")
    forged = await client.get(path[:-4] + "0000")
    assert forged.status == 403
    expired = await client.get(f"{key}?expires=1&signature=x")
    assert expired.status == 403
    unsigned = await client.get(key)
    assert unsigned.status == 403
    not_a_key = await client.get("/thumbnails/..%2Fsecret?" + query)
    assert not_a_key.status in (403, 404)


async def test_the_thumbnails_route_exists_only_with_the_local_store(
    make_client: ClientFactory,
) -> None:
    client = await make_client(thumbnail_store="s3", aws_bucket="thumbs")
    body = await (await client.get("/101/")).json()
    assert body["url"].startswith("https://store.example/")
    status, _ = await json_error(client, "/thumbnails/101.0123456789abcdef0123456789abcdef.jpg")
    assert status == 404


@pytest.mark.parametrize("expires", ["²", "١٢٣٤٥٦٧٨٩٠", "1_700_000_000", " 1", "+1"])
async def test_local_store_url_numbers_are_ascii_digits_only(
    make_client: ClientFactory, expires: str
) -> None:
    client = await make_client(real_store=True, thumbnail_store="local")
    key = "101.0123456789abcdef0123456789abcdef.jpg"
    status, body = await json_error(
        client, f"/thumbnails/{key}", params={"expires": expires, "signature": "x"}
    )
    assert status == 403 and body["message"]


@pytest.mark.parametrize(
    "query",
    ["width=٣٠٠", "height=²", "quality=٨٠", "percentile=1_0", "percentile=٩٩", "percentile=1e2"],
)
async def test_numbers_in_queries_are_ascii_digits_only(client: TestClient, query: str) -> None:
    status, body = await json_error(client, "/101/", params=dict([query.split("=")]))
    assert status == 400 and body["message"]


@pytest.mark.parametrize("signature", ["»", "签名", "\u00ff" * 64])
async def test_a_signature_in_any_script_is_refused_not_a_500(
    make_client: ClientFactory, signature: str
) -> None:
    client = await make_client(real_store=True, thumbnail_store="local")
    key = "101.0123456789abcdef0123456789abcdef.jpg"
    status, body = await json_error(
        client, f"/thumbnails/{key}", params={"expires": "99999999999", "signature": signature}
    )
    assert status == 403 and body["message"]


async def test_leases_in_the_store_are_probed_at_start_and_shown_in_metrics(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    client = await make_client()
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_leases_enabled") == 1
    assert fakes.lease_store.leases == {}, "the start-up probe left its lease behind"
    assert (await client.get("/101/")).status == 200
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_leases_total", outcome="won") == 1
    assert fakes.lease_store.leases == {}


async def test_a_store_without_conditional_writes_falls_back_to_one_process(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    fakes.lease_store.conditional = False
    with structlog.testing.capture_logs() as logs:
        client = await make_client()
        probed = sum(fakes.lease_store.calls.values())
        assert (await client.get("/101/")).status == 200
    assert [e for e in logs if e["event"] == "leases_unsupported"]
    assert sum(fakes.lease_store.calls.values()) == probed  # no claim after the probe
    assert fakes.lease_store.leases == {}
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_leases_enabled") == 0
    assert metric(text, "thumbservice_leases_total") == 0


async def test_leases_off_claims_nothing(make_client: ClientFactory, fakes: Fakes) -> None:
    client = await make_client(leases="off")
    assert (await client.get("/101/")).status == 200
    assert sum(fakes.lease_store.calls.values()) == 0
