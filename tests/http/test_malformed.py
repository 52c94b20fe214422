"""Requests aiohttp's parser refuses: still a JSON error, logged at info, nothing echoed."""

from __future__ import annotations

import asyncio
import json

import pytest
import structlog
from aiohttp.test_utils import TestClient

MALFORMED = {
    "request line over 32 KB": b"GET /" + b"a" * 33000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header over 8 KB": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
    "invalid method": b"G@T /101/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "Transfer-Encoding with Content-Length": (
        b"POST /101/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\r\n\r\n",
}


async def raw_exchange(client: TestClient, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(payload)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
async def test_parser_refusals_are_json_and_logged_at_info(
    client: TestClient, payload: bytes
) -> None:
    with structlog.testing.capture_logs() as logs:
        status, headers, body = await raw_exchange(client, payload)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    message = json.loads(body)["message"]
    assert message
    for echo in ("aaaa", "bbbb", "G@T", "X-Big"):
        assert echo not in message
    refused = [entry for entry in logs if entry["event"] == "request_refused"]
    assert [entry["log_level"] for entry in refused] == ["info"]
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]


async def test_the_server_still_answers_after_refusals(client: TestClient) -> None:
    for payload in MALFORMED.values():
        await raw_exchange(client, payload)
    assert (await client.get("/healthz")).status == 200
