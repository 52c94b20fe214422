"""Bad input and failing dependencies: always a JSON error with a message, never a 500."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.support.archive_server import ArchiveStub, Fault


async def error(client: TestClient, path: str, **kw: object) -> tuple[int, dict]:
    response = await client.get(path, **kw)  # type: ignore[arg-type]
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status, await response.json()


async def test_unknown_frame_is_404(client: TestClient) -> None:
    assert (await error(client, "/999999/"))[0] == 404
    assert (await error(client, "/no-such-frame-e91/"))[0] == 404


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault(status=500), 502),
        (Fault(status=503), 502),
        (Fault(status=403), 403),
        (Fault(status=429), 429),
        (Fault(reset=True), 502),
        (Fault(delay=3.0), 504),
    ],
)
async def test_archive_failures_map_to_clear_statuses(
    client: TestClient, archive: ArchiveStub, fault: Fault, status: int
) -> None:
    archive.fault = fault
    got, body = await error(client, "/101/")
    assert got == status
    assert body["message"]


async def test_archive_down_is_502(make_client, archive: ArchiveStub) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(archive_api_url="http://127.0.0.1:9/")
    status, body = await error(client, "/101/")
    assert status == 502
    assert "cannot be reached" in body["message"]


async def test_corrupt_fits_is_422(client: TestClient) -> None:
    status, body = await error(client, "/105/")
    assert status == 422
    assert "FITS" in body["message"]


@pytest.mark.parametrize(
    ("fault", "status"), [(Fault(status=500), 502), (Fault(truncate=True), 502)]
)
async def test_download_failures(
    client: TestClient, archive: ArchiveStub, fault: Fault, status: int
) -> None:
    archive.file_fault = fault
    got, body = await error(client, "/101/")
    assert got == status
    assert "101" in body["message"] or "ogg1m001" in body["message"]


async def test_rules_refuse_with_400(client: TestClient) -> None:
    status, body = await error(client, "/106/")
    assert status == 400
    assert ".fits" in body["message"]
    status, body = await error(client, "/104/?color=true")
    assert status == 400
    assert "color" in body["message"]


async def test_a_throttling_archives_retry_after_is_passed_on(
    client: TestClient, archive: ArchiveStub
) -> None:
    archive.fault = Fault(status=429)
    response = await client.get("/101/")
    assert response.status == 429
    assert response.headers["Retry-After"] == "5"  # the archive's own estimate
    assert (await response.json())["response"]["detail"].startswith("Request was throttled")
