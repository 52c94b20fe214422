"""An HTTP proxy in front of moto that holds thumbnail uploads until the test opens it.

Uploads (PUTs of objects outside the lease prefix) wait at the gate, the first `hold` of
them; every other request passes at once. The test sees how many wait (`held`), opens the
gate (`open()`), and learns of a client that gave up on a held upload (`dropped`): what a
service closing its S3 client under an upload does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class UploadGate:
    def __init__(self, target: str, hold: int, lease_prefix: str = "leases/") -> None:
        self.target = target.rstrip("/")
        self.hold = hold
        self.lease_prefix = lease_prefix
        self.held = 0
        self.dropped = 0
        self._open = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.endpoint = ""

    def open(self) -> None:
        self._open.set()

    def _is_upload(self, request: web.Request) -> bool:
        parts = request.path.lstrip("/").split("/", 1)
        return (
            request.method == "PUT"
            and len(parts) == 2
            and bool(parts[1])
            and not parts[1].startswith(self.lease_prefix)
        )

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self._is_upload(request) and self.hold > 0:
            self.hold -= 1
            self.held += 1
            try:
                await self._open.wait()
            except asyncio.CancelledError:
                self.dropped += 1
                raise
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = request.headers.get("Host", "")
        async with self._session.request(
            request.method,
            f"{self.target}{request.path_qs}",
            headers=headers,
            data=body,
            allow_redirects=False,
            auto_decompress=False,
        ) as upstream:
            payload = await upstream.read()
            answer_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            if request.method == "HEAD":
                length = upstream.headers.get("Content-Length")
                if length is not None:
                    answer_headers["Content-Length"] = length
                return web.Response(status=upstream.status, headers=answer_headers)
            return web.Response(status=upstream.status, headers=answer_headers, body=payload)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.endpoint = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.open()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


@contextlib.asynccontextmanager
async def upload_gate(target: str, hold: int) -> AsyncIterator[UploadGate]:
    gate = UploadGate(target, hold)
    await gate.start()
    try:
        yield gate
    finally:
        await gate.stop()
