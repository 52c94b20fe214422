"""A real S3 endpoint on 127.0.0.1: moto in server mode, spoken to over HTTP."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from thumbservice.adapters.storage.s3 import open_s3_client

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


_OBJECT_WRITES = threading.Lock()


def _one_at_a_time(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with _OBJECT_WRITES:
            return write(self, *args, **kwargs)

    locked.one_at_a_time = True  # type: ignore[attr-defined]
    return locked


def atomic_conditional_writes() -> None:
    """Make moto decide a conditional write as S3 does: in one step.

    moto (5.2.5) checks `If-None-Match` / `If-Match` and then writes, and its server handles
    each request in a thread of its own, so two racing creates could both pass the check.
    S3 decides the condition and the write atomically; one lock around moto's object writes and
    deletes does the same here. Reads are untouched.
    """
    for name in ("put_object", "delete_object"):
        write = getattr(S3Response, name)
        if not getattr(write, "one_at_a_time", False):
            setattr(S3Response, name, _one_at_a_time(write))


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's S3 server on a free port and yield its endpoint URL."""
    atomic_conditional_writes()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def create_bucket(endpoint: str, bucket: str) -> None:
    """Create `bucket` on the S3 endpoint, with the credentials above."""
    async with open_s3_client(
        region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=endpoint
    ) as client:
        await client.create_bucket(Bucket=bucket)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_endpoint() -> str:
    """An endpoint on which nothing listens: every connection is refused at once."""
    return f"http://127.0.0.1:{free_port()}"
