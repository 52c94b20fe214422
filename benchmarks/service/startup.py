"""Start-up: /readyz answering 200, the render workers settling, then the first renders on the
fresh workers."""

from __future__ import annotations

import asyncio

from tests.support.metrics import metric

from benchmarks.service.client import fetch, metrics
from benchmarks.service.harness import SMALL, Bench, wait_ready, wait_workers_settled
from benchmarks.service.proc import workers_times
from benchmarks.service.report import Report, ms, section


async def measure(bench: Bench, report: Report) -> float:
    """The mean render time of the first renders, which the cold measurement compares with."""
    session, base, sampler, frames = bench.session, bench.base, bench.sampler, bench.frames
    service = bench.service
    ready = await wait_ready(session, service)
    settled = await wait_workers_settled(sampler)
    section("Start-up")
    print(f"/readyz answered 200 after {ready:.2f} s; workers settled {settled:.2f} s later")
    report.add("readyz 200 after start", f"{ready:.2f} s")

    # -- first renders on fresh workers: two at once so that each worker takes one
    sampler.phase = "warm-up"
    before = metric(await metrics(session, base), "thumbservice_render_duration_seconds_sum")
    urls = [f"{base}/{f.frame_id}/?width=200&height=200" for f in frames["warmup"]]
    cpu_before = workers_times(sampler.workers())
    first = await asyncio.gather(*(fetch(session, url) for url in urls))
    cpu_after = workers_times(sampler.workers())
    after = metric(await metrics(session, base), "thumbservice_render_duration_seconds_sum")
    first_render = (after - before) / len(first)
    print(
        f"first requests on fresh workers ({SMALL}², 200 px, 2 at once): "
        f"{', '.join(ms(a.seconds) for a in first)}; mean render {ms(first_render)} "
        f"(workers' CPU: user {ms(cpu_after[0] - cpu_before[0])}, "
        f"sys {ms(cpu_after[1] - cpu_before[1])} for both)"
    )
    if any(a.status != 200 for a in first):
        report.problem(f"warm-up answers: {[a.status for a in first]}")
    return first_render
