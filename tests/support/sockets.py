"""Raw TCP connections for the tests of the connection limits: sockets that connect and then
send nothing (until the test makes them), and what the server sent on one until it closed it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def silent_sockets(
    host: str, port: int, count: int, *, receive_buffer: int | None = None
) -> AsyncIterator[list[socket.socket]]:
    """`count` TCP connections to `host`:`port` that send nothing (until the test makes them),
    with a receive buffer of `receive_buffer` bytes if given; all of them closed afterwards."""
    loop = asyncio.get_running_loop()
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            if receive_buffer is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            opened.append(sock)
            await loop.sock_connect(sock, (host, port))
        yield opened
    finally:
        for sock in opened:
            sock.close()


async def closed_by_server(sock: socket.socket, patience: float) -> bytes:
    """Everything the server sent on `sock` until it closed it (EOF or reset); TimeoutError if it
    has not closed it within `patience` seconds."""
    loop = asyncio.get_running_loop()
    received = bytearray()
    async with asyncio.timeout(patience):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return bytes(received)
            if not chunk:
                return bytes(received)
            received += chunk
