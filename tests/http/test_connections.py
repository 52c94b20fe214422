"""Idle, half-open, too many and slow-reading connections: the limits of entrypoints/server.py.

Real sockets against aiohttp's test server on 127.0.0.1 (the service's own runner), with the
ports faked. Timeouts are small; every wait is on a state (a socket closed, a connection
paused), bounded by a deadline only so that a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.http.conftest import ClientFactory, Fakes
from tests.support.fakes import FakeRenderer
from tests.support.metrics import metric
from tests.support.sockets import closed_by_server, silent_sockets
from tests.support.waiting import until
from thumbservice.domain.spec import ThumbnailSpec
from thumbservice.entrypoints.server import WRITE_BUFFER_HIGH, WRITE_CHUNK

PATIENCE = 15.0
"""The most any expected state may take to arrive before the test fails."""
PACE = 0.05
"""How long the slow but steady reader stops between reads."""


class BigRenderer(FakeRenderer):
    """Thumbnails of `size` incompressible bytes, the same for every render."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.data = os.urandom(size)

    async def render(self, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path) -> bytes:
        await super().render(sources, spec, workdir)
        return self.data


def raw_connections(
    client: TestClient, count: int, *, receive_buffer: int | None = None
) -> contextlib.AbstractAsyncContextManager[list[socket.socket]]:
    """`count` TCP connections to the app that send nothing (until the test makes them)."""
    host, port = client.server.host, client.server.port
    return silent_sockets(host, port, count, receive_buffer=receive_buffer)


def server_connections(client: TestClient) -> list:  # type: ignore[type-arg]
    runner = client.server.runner
    assert runner is not None and runner.server is not None
    return list(runner.server.connections)


async def test_a_silent_connection_is_closed_after_the_header_timeout(
    make_client: ClientFactory,
) -> None:
    client = await make_client(header_timeout=0.3)
    async with raw_connections(client, 3) as silent:
        health = await client.get("/healthz")
        assert health.status == 200
        for sock in silent:
            assert await closed_by_server(sock, PATIENCE) == b""
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_connections_closed_total", reason="header_timeout") == 3


async def test_a_request_head_sent_in_pieces_must_be_whole_within_the_timeout(
    make_client: ClientFactory,
) -> None:
    client = await make_client(header_timeout=0.3)
    loop = asyncio.get_running_loop()
    async with raw_connections(client, 1) as (slowloris,):
        await loop.sock_sendall(slowloris, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        # It keeps sending header lines, never the blank line that ends the head.
        closed = asyncio.ensure_future(closed_by_server(slowloris, PATIENCE))
        while not closed.done():
            with contextlib.suppress(OSError):
                await loop.sock_sendall(slowloris, b"X-More: 1\r\n")
            await asyncio.wait({closed}, timeout=0.05)
        assert await closed == b""


async def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(
    make_client: ClientFactory,
) -> None:
    client = await make_client(keepalive_timeout=0.3, header_timeout=60)
    loop = asyncio.get_running_loop()
    async with raw_connections(client, 1) as (sock,):
        await loop.sock_sendall(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await closed_by_server(sock, PATIENCE)
    assert answer.startswith(b"HTTP/1.1 200")


async def test_over_the_cap_an_idle_connection_makes_room(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_connections=4, header_timeout=60)
    async with raw_connections(client, 4) as silent:
        await until(lambda: len(server_connections(client)) == 4, PATIENCE, what="four connections")
        # The test client's own connection is the fifth: the oldest silent one is closed.
        assert (await client.get("/healthz")).status == 200
        assert await closed_by_server(silent[0], PATIENCE) == b""
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_connections_closed_total", reason="evicted") >= 1


async def test_over_the_cap_with_every_connection_busy_answers_503_in_json(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    client = await make_client(max_connections=2, header_timeout=60)
    fakes.renderer.gate = asyncio.Event()
    busy = [asyncio.ensure_future(client.get(f"/101/?width={w}")) for w in (10, 11)]
    await until(lambda: len(fakes.renderer.calls) == 2, PATIENCE, what="two renders under way")
    loop = asyncio.get_running_loop()
    async with raw_connections(client, 1) as (third,):
        await loop.sock_sendall(third, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await closed_by_server(third, PATIENCE)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: 1" in head
    assert b"application/json" in head
    assert b"too many open connections" in body
    fakes.renderer.gate.set()
    assert [(await r).status for r in busy] == [200, 200]


async def test_a_client_that_stops_reading_is_disconnected_and_holds_a_bounded_buffer(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    size = 8 * 1024 * 1024
    fakes.renderer = BigRenderer(size)
    client = await make_client(send_timeout=1.0)
    assert len(await (await client.get("/101/?width=300&image=true")).read()) == size
    loop = asyncio.get_running_loop()
    request = b"GET /101/?width=300&image=true HTTP/1.1\r\nHost: x\r\n\r\n"
    async with raw_connections(client, 6, receive_buffer=4096) as readers:
        for sock in readers:
            await loop.sock_sendall(sock, request)

        # The first to pause may be closed before the last pauses: each connection seen paused
        # is kept, with the most it was ever seen to queue (every connection's, paused or not).
        paused: set[object] = set()
        queued: dict[object, int] = {}

        def six_seen_paused() -> bool:
            for connection in server_connections(client):
                if connection.transport is None:
                    continue
                size = connection.transport.get_write_buffer_size()
                queued[connection] = max(queued.get(connection, 0), size)
                if connection.writing_paused:
                    paused.add(connection)
            return len(paused) == len(readers)

        await until(six_seen_paused, PATIENCE, what="every slow reader's connection paused")
        assert max(queued.values()) <= WRITE_BUFFER_HIGH + WRITE_CHUNK, queued
        # The service keeps answering while they sit there.
        assert (await client.get("/healthz")).status == 200
        await until(
            lambda: not paused & set(server_connections(client)),
            PATIENCE,
            what="the slow readers closed",
        )
        for sock in readers:
            assert len(await closed_by_server(sock, PATIENCE)) < size
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_connections_closed_total", reason="send_timeout") == 6


async def test_a_slow_but_steady_reader_gets_the_whole_answer(
    make_client: ClientFactory, fakes: Fakes
) -> None:
    """The send timeout bounds a stall, not the whole answer: the reader takes 64 pauses of
    `PACE` seconds to read it, several times the timeout, and never stalls the server long."""
    size = 8 * 1024 * 1024
    step = 128 * 1024  # read in each pace: writing resumes long before the timeout
    fakes.renderer = BigRenderer(size)
    fakes.renderer.gate = asyncio.Event()
    send_timeout = 1.0
    client = await make_client(send_timeout=send_timeout)
    assert (size // step) * PACE > 3 * send_timeout  # what the pacing sleeps alone add up to
    loop = asyncio.get_running_loop()
    async with raw_connections(client, 1, receive_buffer=4096) as (sock,):
        await loop.sock_sendall(sock, b"GET /101/?image=true HTTP/1.1\r\nHost: x\r\n\r\n")
        await until(lambda: fakes.renderer.calls, PATIENCE, what="the render under way")
        (connection,) = server_connections(client)
        # A small kernel send buffer, whatever the machine's TCP autotuning: the stalls are the
        # service's own write buffer draining at the reader's pace.
        server_socket = connection.transport.get_extra_info("socket")
        server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        fakes.renderer.gate.set()
        received = bytearray()
        seen_paused = False

        def body() -> int:
            return len(received.partition(b"\r\n\r\n")[2])

        async with asyncio.timeout(PATIENCE * 4):
            while body() < size:
                wanted = len(received) + step
                while len(received) < wanted and body() < size:
                    chunk = await loop.sock_recv(sock, wanted - len(received))
                    assert chunk, "closed before the whole answer"
                    received += chunk
                seen_paused = seen_paused or connection.writing_paused
                await asyncio.sleep(PACE)  # a deliberate stall of the reader, far below the timeout
    assert seen_paused, "the service never waited on the reader: its send timeout never ran"
    assert received.partition(b"\r\n\r\n")[2] == fakes.renderer.data
