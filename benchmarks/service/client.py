"""Requests to the service: a timed GET, and the text of /metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)


@dataclass
class Answer:
    status: int
    seconds: float
    body: bytes


async def fetch(session: aiohttp.ClientSession, url: str) -> Answer:
    started = time.perf_counter()
    async with session.get(url, timeout=REQUEST_TIMEOUT) as response:
        body = await response.read()
        return Answer(response.status, time.perf_counter() - started, body)


async def metrics(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(base + "/metrics", timeout=REQUEST_TIMEOUT) as response:
        return await response.text()
