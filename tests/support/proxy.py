"""A TCP proxy on 127.0.0.1 that can stall: the dependency behind it looks stopped, not dead.

A stopped process (SIGSTOP, a hung VM) still accepts connections at the kernel level but never
answers; that is the failure a timeout, not a refusal, has to catch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class StallingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._running = asyncio.Event()
        self._running.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stall(self) -> None:
        """Stop forwarding bytes in both directions; connections stay open."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            for stream in (writer, up_writer):
                stream.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while True:
            await self._running.wait()
            chunk = await source.read(65536)
            if not chunk:
                sink.close()
                return
            await self._running.wait()
            sink.write(chunk)
            await sink.drain()


@contextlib.asynccontextmanager
async def stalling_proxy(endpoint: str) -> AsyncIterator[StallingProxy]:
    """A proxy in front of `http://host:port`, started and stopped around the block."""
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    proxy = StallingProxy(host, int(port))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
