"""The store reached by another name, checking signatures as S3 and MinIO do.

An HTTP server on 127.0.0.1 (a port of its own: the "public" endpoint) that forwards requests to
moto's server (the endpoint the service uses). moto does not check the signature of a presigned
URL; this proxy does, first, the way S3 does (SigV4 in the query string: the method, the path,
the query and the Host header as this proxy received them, the secret key), and answers 403
SignatureDoesNotMatch when it does not hold, or when the URL has expired.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.support.s3 import SECRET_KEY


@dataclass
class SigningProxy:
    endpoint: str
    checked: int = 0
    refused: int = 0


def _key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature_holds(method: str, host: str, raw_path: str, secret: str = SECRET_KEY) -> bool:
    """Whether a presigned request (SigV4 in the query, the Host header signed) is valid now."""
    path, _, query = raw_path.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or "X-Amz-Signature" not in params:
        return False
    if params.get("X-Amz-SignedHeaders") != "host":
        return False
    amz_date = params["X-Amz-Date"]
    signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    age = (datetime.datetime.now(datetime.UTC) - signed_at).total_seconds()
    if age > int(params["X-Amz-Expires"]):
        return False
    _, date, region, service, _ = params["X-Amz-Credential"].split("/")

    def quote(text: str) -> str:
        return urllib.parse.quote(text, safe="-_.~")

    canonical_query = "&".join(
        f"{quote(k)}={quote(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    canonical = "\n".join(
        ["GET" if method == "HEAD" else method, path, canonical_query, f"host:{host}", "",
         "host", "UNSIGNED-PAYLOAD"]
    )  # fmt: skip
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    expected = hmac.new(
        _key(secret, date, region, service), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, params["X-Amz-Signature"])


@contextlib.asynccontextmanager
async def signing_proxy(target: str) -> AsyncIterator[SigningProxy]:
    """The proxy in front of `target` (http://host:port), on a free port of 127.0.0.1."""
    proxy = SigningProxy(endpoint="")
    async with aiohttp.ClientSession(auto_decompress=False) as http:

        async def forward(request: web.Request) -> web.StreamResponse:
            if "X-Amz-Signature" in request.query:
                proxy.checked += 1
                if not signature_holds(request.method, request.host, request.raw_path):
                    proxy.refused += 1
                    return web.Response(status=403, text="SignatureDoesNotMatch")
            async with http.request(
                request.method, target + request.raw_path, data=await request.read()
            ) as answer:
                body = await answer.read()
                headers = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() in ("content-type", "etag", "cache-control", "last-modified")
                }
                return web.Response(status=answer.status, body=body, headers=headers)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        proxy.endpoint = f"http://127.0.0.1:{port}"
        try:
            yield proxy
        finally:
            await runner.cleanup()
