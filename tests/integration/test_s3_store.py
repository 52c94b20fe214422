"""The S3 adapter against moto's server mode, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, dead_endpoint
from thumbservice.adapters.storage.cached import CachedStore
from thumbservice.adapters.storage.s3 import S3Store, open_s3_client
from thumbservice.domain.errors import StoreUnavailable

KEY = "11245132.0123456789abcdef0123456789abcdef.jpg"


@pytest.fixture
async def client(s3_endpoint: str) -> AsyncIterator[Any]:
    async with open_s3_client(
        region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=s3_endpoint
    ) as client:
        yield client


@pytest.fixture
async def store(client: Any, bucket_name: str) -> S3Store:
    await client.create_bucket(Bucket=bucket_name)
    return S3Store(client, bucket_name)


async def test_put_exists_get(store: S3Store) -> None:
    assert not await store.exists(KEY)
    assert await store.get(KEY) is None
    await store.put(KEY, b"\xff\xd8jpeg bytes", "image/jpeg")
    assert await store.exists(KEY)
    assert await store.get(KEY) == b"\xff\xd8jpeg bytes"


async def test_presigned_url_serves_the_object_without_credentials(store: S3Store) -> None:
    await store.put(KEY, b"\xff\xd8jpeg bytes", "image/jpeg")
    url = await store.url_for(KEY, 604800)
    assert "X-Amz-Expires=604800" in url
    assert "X-Amz-Signature=" in url
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        assert await response.read() == b"\xff\xd8jpeg bytes"


async def test_check_reports_a_missing_bucket(client: Any) -> None:
    with pytest.raises(StoreUnavailable, match="no bucket") as missing:
        await S3Store(client, "no-such-bucket").check()
    assert "no-such-bucket" not in missing.value.message  # names go to the log only


async def test_unreachable_endpoint_is_store_unavailable() -> None:
    async with open_s3_client(
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_url=dead_endpoint(),
        read_timeout=0.5,
    ) as client:
        store = S3Store(client, "bucket")
        with pytest.raises(StoreUnavailable):
            await store.exists(KEY)
        with pytest.raises(StoreUnavailable):
            await store.put(KEY, b"x", "image/jpeg")
        with pytest.raises(StoreUnavailable):
            await store.get(KEY)
        with pytest.raises(StoreUnavailable):
            await store.check()


async def test_ensure_bucket_creates_a_missing_bucket_once(client: Any, bucket_name: str) -> None:
    store = S3Store(client, bucket_name)
    with pytest.raises(StoreUnavailable):
        await store.check()
    await store.ensure_bucket()
    await store.check()
    await store.ensure_bucket()  # already there: nothing to do
    await store.put(KEY, b"x", "image/jpeg")
    assert await store.exists(KEY)


async def wipe(client: Any, bucket: str) -> None:
    """The store restarted empty: every object and the bucket itself gone."""
    listing = await client.list_objects_v2(Bucket=bucket)
    for item in listing.get("Contents", []):
        await client.delete_object(Bucket=bucket, Key=item["Key"])
    await client.delete_bucket(Bucket=bucket)


OTHER = "11245133.0123456789abcdef0123456789abcdef.jpg"


async def test_a_bucket_found_gone_at_an_upload_is_made_again_and_the_cache_forgets(
    client: Any, store: S3Store
) -> None:
    cached = CachedStore(store, existence_ttl=3600, max_bytes=1024 * 1024)
    await cached.put(KEY, b"\xff\xd8old", "image/jpeg")
    assert await cached.exists(KEY)
    await wipe(client, store.bucket)
    await cached.put(OTHER, b"\xff\xd8new", "image/jpeg")  # recreates the bucket
    assert await cached.exists(OTHER)
    assert not await cached.exists(KEY), "a URL would be handed out for a missing object"
    assert await cached.get(KEY) is None


async def test_a_bucket_found_gone_by_readiness_makes_the_cache_forget(
    client: Any, store: S3Store
) -> None:
    cached = CachedStore(store, existence_ttl=3600, max_bytes=1024 * 1024)
    await cached.put(KEY, b"\xff\xd8old", "image/jpeg")
    assert await cached.get(KEY) == b"\xff\xd8old"
    await wipe(client, store.bucket)
    with pytest.raises(StoreUnavailable, match="no bucket"):
        await cached.check()
    await client.create_bucket(Bucket=store.bucket)  # made again, empty
    assert not await cached.exists(KEY)
    assert await cached.get(KEY) is None


async def test_an_upload_makes_the_bucket_again_though_a_read_found_it_gone_meanwhile(
    client: Any, store: S3Store
) -> None:
    """A read that finds the bucket gone while an upload is failing for the same reason must
    not pass, for the upload, for the bucket having been made again."""
    await wipe(client, store.bucket)
    real_put = store._put
    calls = 0

    async def read_meanwhile(key: str, data: bytes, content_type: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert await store.get(KEY) is None  # finds the bucket gone: generation moves
        await real_put(key, data, content_type)

    store._put = read_meanwhile  # type: ignore[method-assign]
    await store.put(OTHER, b"\xff\xd8new", "image/jpeg")
    assert await store.get(OTHER) == b"\xff\xd8new"
