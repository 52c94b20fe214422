"""Health under load: /healthz every HEALTH_INTERVAL, idle and then while 4 large renders run
and queue behind the 2 workers, with the renders in flight and the queue depth from /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from tests.support.metrics import metric

from benchmarks.service.client import fetch, metrics
from benchmarks.service.harness import Bench
from benchmarks.service.report import Report, ms, percentile, section

HEALTH_INTERVAL = 0.020


async def measure(bench: Bench, report: Report) -> None:
    session, base, sampler, frames = bench.session, bench.base, bench.sampler, bench.frames
    section(f"/healthz every {HEALTH_INTERVAL * 1000:.0f} ms, idle then under load")
    sampler.phase = "health-idle"
    probe_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2))
    async with probe_session:
        idle = await probe_until(probe_session, base, lambda: False, limit=50)
        sampler.phase = "health-load"
        big = [f"{base}/{f.frame_id}/?width=4000&height=4000" for f in frames["health"]]
        renders_task = asyncio.gather(*(fetch(session, url) for url in big))
        gauges: list[tuple[float, float]] = []
        gauge_task = asyncio.create_task(watch_gauges(session, base, gauges, renders_task))
        started = time.perf_counter()
        loaded = await probe_until(probe_session, base, renders_task.done)
        big_answers = await renders_task
        big_wall = time.perf_counter() - started
        await gauge_task
    idle_p50, loaded_p50 = percentile(idle, 50), percentile(loaded, 50)
    print(
        f"idle: {len(idle)} probes, p50 {ms(idle_p50)}, max {ms(max(idle))}\n"
        f"under load: {len(loaded)} probes, p50 {ms(loaded_p50)}, "
        f"p95 {ms(percentile(loaded, 95))}, max {ms(max(loaded))} "
        f"({loaded_p50 / idle_p50:.1f}x idle p50)\n"
        f"4 renders at 4000 px: statuses {[a.status for a in big_answers]}, latencies "
        f"{', '.join(ms(a.seconds) for a in big_answers)}; all done in {big_wall:.2f} s"
    )
    if gauges:
        print(
            f"  max renders in flight {max(g[0] for g in gauges):.0f}, "
            f"max queue depth {max(g[1] for g in gauges):.0f}"
        )
    if any(a.status != 200 for a in big_answers):
        report.problem(f"4000 px renders answered {[a.status for a in big_answers]}")
    report.add("healthz idle: p50 / max", f"{ms(idle_p50)} / {ms(max(idle))}", "")
    report.add(
        "healthz under 4 big renders: p50 / max",
        f"{ms(loaded_p50)} / {ms(max(loaded))}",
        f"p50 {loaded_p50 / idle_p50:.1f}x idle; {len(loaded)} probes",
    )
    report.add(
        "4 cold renders @4000px (2 workers)",
        f"{big_wall:.2f} s",
        f"slowest {ms(max(a.seconds for a in big_answers))}",
    )


async def probe_until(
    session: aiohttp.ClientSession, base: str, done: Callable[[], bool], limit: int = 100000
) -> list[float]:
    latencies: list[float] = []
    while not done() and len(latencies) < limit:
        answer = await fetch(session, base + "/healthz")
        if answer.status != 200:
            print(f"!! /healthz answered {answer.status}")
        latencies.append(answer.seconds)
        await asyncio.sleep(HEALTH_INTERVAL)
    return latencies


async def watch_gauges(
    session: aiohttp.ClientSession,
    base: str,
    out: list[tuple[float, float]],
    until: Awaitable[Any],
) -> None:
    future = asyncio.ensure_future(until)
    while not future.done():
        text = await metrics(session, base)
        out.append(
            (
                metric(text, "thumbservice_renders_in_flight"),
                metric(text, "thumbservice_render_queue_depth"),
            )
        )
        await asyncio.sleep(0.25)
