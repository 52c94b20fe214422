"""STORAGE_PUBLIC_URL: URLs signed for the endpoint clients reach the store by, when the service
reaches it by another (compose's `minio:9000`, a VPC endpoint), against moto's server."""

from __future__ import annotations

import urllib.parse

import aiohttp

from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, create_bucket
from tests.support.signing_proxy import signing_proxy
from thumbservice.adapters.storage.s3 import open_s3_store

KEY = "11245132.0123456789abcdef0123456789abcdef.jpg"


async def test_urls_are_signed_for_the_public_endpoint_and_valid_through_it(
    s3_endpoint: str, bucket_name: str
) -> None:
    await create_bucket(s3_endpoint, bucket_name)
    async with signing_proxy(s3_endpoint) as public:
        settings = dict(
            bucket=bucket_name,
            region=REGION,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            endpoint_url=s3_endpoint,
            hot_timeout=3.0,
        )
        async with (
            open_s3_store(**settings, public_url=public.endpoint) as store,  # type: ignore[arg-type]
            open_s3_store(**settings) as internal,  # type: ignore[arg-type]
        ):
            await store.put(KEY, b"\xff\xd8jpeg bytes", "image/jpeg")
            url = urllib.parse.urlsplit(await store.url_for(KEY, 3600))
            # Path-style, as MinIO needs, on the public host; the service still stores through
            # the other endpoint.
            assert f"{url.scheme}://{url.netloc}" == public.endpoint
            assert url.path == f"/{bucket_name}/{KEY}"
            assert await internal.get(KEY) == b"\xff\xd8jpeg bytes"

            async with aiohttp.ClientSession() as http:
                async with http.get(url.geturl()) as response:
                    assert response.status == 200
                    assert await response.read() == b"\xff\xd8jpeg bytes"
                assert (public.checked, public.refused) == (1, 0)

                # The default stays as before: signed for the endpoint the service uses, which
                # the public endpoint's check refuses (its Host is not the one signed).
                default = urllib.parse.urlsplit(await internal.url_for(KEY, 3600))
                assert f"{default.scheme}://{default.netloc}" == s3_endpoint
                moved = default._replace(netloc=urllib.parse.urlsplit(public.endpoint).netloc)
                async with http.get(moved.geturl()) as response:
                    assert response.status == 403
                assert public.refused == 1
