"""Download limits on a real HTTP server that streams without announcing a length."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from thumbservice.adapters.archive.http import HttpArchive
from thumbservice.domain.errors import FrameTooLarge
from thumbservice.domain.frames import Frame


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(64):
        await response.write(b"x" * 1024)
    await response.write_eof()
    return response


@pytest.fixture
async def server() -> TestServer:
    app = web.Application()
    app.router.add_get("/file.fits.fz", chunked)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_the_limit_is_enforced_while_streaming(server: TestServer, tmp_path: Path) -> None:
    frame = Frame.from_record(
        {"id": 1, "filename": "file.fits.fz", "url": str(server.make_url("/file.fits.fz"))}
    )
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as files:
        small = HttpArchive(
            session, "http://archive.invalid/", download_session=files, max_download_bytes=10_000
        )
        with pytest.raises(FrameTooLarge, match="larger than the limit of 10000 bytes"):
            await small.download(frame, tmp_path / "f.fits.fz")
        assert list(tmp_path.iterdir()) == []
        roomy = HttpArchive(
            session, "http://archive.invalid/", download_session=files, max_download_bytes=1 << 20
        )
        assert await roomy.download(frame, tmp_path / "f.fits.fz") == 64 * 1024
