"""aiohttp's TestServer on the service's own runner, so tests see what production serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from thumbservice.entrypoints.server import Runner


class AppTestServer(TestServer):
    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return Runner(self.app, **kwargs)
