"""A real S3 endpoint on 127.0.0.1: moto in server mode, spoken to over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from thumbservice.adapters.storage.s3 import open_s3_client

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's S3 server on a free port and yield its endpoint URL."""
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
