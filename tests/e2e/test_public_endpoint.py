"""STORAGE_PUBLIC_URL through the whole app: the JSON answer's URL names the store's public
endpoint, and serves the thumbnail from there."""

from __future__ import annotations

import urllib.parse

import aiohttp

from tests.support.imaging import decode
from tests.support.signing_proxy import signing_proxy


async def test_a_json_url_is_signed_for_the_stores_public_endpoint(
    make_client, s3_endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    async with signing_proxy(s3_endpoint) as public:
        client = await make_client(storage_public_url=public.endpoint)
        response = await client.get("/101/?width=80")
        assert response.status == 200
        url = (await response.json())["url"]
        assert url.startswith(public.endpoint + "/")
        assert urllib.parse.urlsplit(s3_endpoint).netloc not in url
        async with aiohttp.ClientSession() as http, http.get(url) as stored:
            assert stored.status == 200
            assert decode(await stored.read()).width == 80
        assert (public.checked, public.refused) == (1, 0)
