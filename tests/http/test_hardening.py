"""Headers that tell browsers and caches what they may do with an answer (headers.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from tests.http.conftest import OWNER, ClientFactory
from thumbservice.entrypoints.middleware import ALLOWED_HEADERS

PATHS = [
    "/",
    "/docs",
    "/docs/static/swagger-ui-bundle.js",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/robots.txt",
    "/favicon.ico",
    "/101/?width=50",
    "/101/?width=50&image=true",
    "/101/?width=x",
    "/999/",
    "/104/",
]


@pytest.mark.parametrize("path", PATHS)
async def test_every_answer_is_nosniff_and_names_no_server_version(
    client: TestClient, path: str
) -> None:
    response = await client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Server"] == "thumbservice"


@pytest.mark.parametrize("path", ["/101/?width=50", "/101/?width=x", "/999/", "/healthz"])
async def test_json_answers_and_errors_are_private_and_never_stored(
    client: TestClient, path: str
) -> None:
    response = await client.get(path, headers={"Authorization": OWNER})
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Authorization" in response.headers["Vary"]


async def test_an_answer_the_parser_refused_is_hardened_too(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n")
    answer = await reader.read()
    writer.close()
    head = answer.partition(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.0 400")  # aiohttp answers a request it could not read so
    assert "x-content-type-options: nosniff" in head
    assert "cache-control: private, no-store" in head
    assert "server: thumbservice\r" in head


@pytest.mark.parametrize("path", ["/", "/docs"])
async def test_pages_have_a_restrictive_content_security_policy(
    client: TestClient, path: str
) -> None:
    response = await client.get(path)
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in policy


async def test_the_index_allows_exactly_its_own_inline_style(client: TestClient) -> None:
    response = await client.get("/")
    style_src = next(
        part.strip()
        for part in response.headers["Content-Security-Policy"].split(";")
        if part.strip().startswith("style-src")
    )
    assert style_src.startswith("style-src 'sha256-")
    assert "unsafe-inline" not in style_src


async def test_a_preflight_allows_a_fixed_list_and_never_echoes_the_request(
    client: TestClient,
) -> None:
    asked = "authorization, x-" + "a" * 8000
    response = await client.options(
        "/101/",
        headers={
            "Origin": "https://archive.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Headers"] == ALLOWED_HEADERS
    assert "aaaa" not in str(response.headers)


async def test_metrics_can_be_switched_off(make_client: ClientFactory) -> None:
    client = await make_client(metrics_port="off")
    response = await client.get("/metrics")
    assert response.status == 404
    assert "thumbservice_" not in await response.text()
    # The API's document no longer lists it either.
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert "/metrics" not in paths and "/readyz" in paths


async def test_metrics_on_a_port_of_their_own_leave_the_main_port(
    make_client: ClientFactory,
) -> None:
    client = await make_client(metrics_port=9999)
    assert (await client.get("/metrics")).status == 404
    assert "/metrics" not in (await (await client.get("/openapi.json")).json())["paths"]
    main = await make_client()
    assert "/metrics" in (await (await main.get("/openapi.json")).json())["paths"]
