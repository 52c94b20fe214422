"""The object store stalled, or back empty: quick answers, then recovery without a person."""

from __future__ import annotations

import time

from aiohttp.test_utils import TestClient

from tests.support.imaging import decode
from tests.support.proxy import stalling_proxy
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY
from thumbservice.adapters.storage.s3 import open_s3_client


async def timed_get(client: TestClient, path: str) -> tuple[int, bytes, float]:
    started = time.monotonic()
    response = await client.get(path)
    body = await response.read()
    return response.status, body, time.monotonic() - started


async def test_a_stalled_store_costs_seconds_and_image_still_renders(  # type: ignore[no-untyped-def]
    make_client, s3_endpoint: str
) -> None:
    async with stalling_proxy(s3_endpoint) as proxy:
        client = await make_client(storage_url=proxy.endpoint, store_timeout=1.0)
        assert (await timed_get(client, "/101/?width=40"))[0] == 200
        proxy.stall()
        status, body, elapsed = await timed_get(client, "/101/?width=64&image=true")
        assert status == 200 and decode(body).size == (64, 48)
        assert elapsed < 6, f"image=true waited {elapsed:.1f} s on a stalled store"
        status, body, elapsed = await timed_get(client, "/101/?width=65")
        assert status == 503 and b"in time" in body
        assert elapsed < 3, f"JSON waited {elapsed:.1f} s on a stalled store"
        assert b"http://" not in body and b"127.0.0.1" not in body
        # A thumbnail the service knows to be stored answers at once, store or no store.
        status, _, elapsed = await timed_get(client, "/101/?width=40")
        assert status == 200 and elapsed < 1
        proxy.resume()
        status, _, _ = await timed_get(client, "/101/?width=65")
        assert status == 200


async def test_a_store_back_empty_gets_its_bucket_again(  # type: ignore[no-untyped-def]
    make_client, bucket: str, s3_endpoint: str
) -> None:
    client = await make_client()
    assert (await client.get("/101/?width=41")).status == 200
    async with open_s3_client(
        region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=s3_endpoint
    ) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        for item in listed.get("Contents", []):
            await s3.delete_object(Bucket=bucket, Key=item["Key"])
        await s3.delete_bucket(Bucket=bucket)
        response = await client.get("/101/?width=42")
        assert response.status == 200
        url = (await response.json())["url"]
        assert url
        listed = await s3.list_objects_v2(Bucket=bucket)
        assert [item["Key"] for item in listed["Contents"]] == [url.split("/")[-1].split("?")[0]]
