"""Single flight: identical concurrent cold requests on a fresh 4096² frame share one download
from the archive and one render."""

from __future__ import annotations

import asyncio
import time

from tests.support.metrics import metric

from benchmarks.service.client import fetch, metrics
from benchmarks.service.cold import ColdResult
from benchmarks.service.harness import LARGE, Bench
from benchmarks.service.proc import workers_times
from benchmarks.service.report import Report, ms, section

SINGLE_FLIGHT_REQUESTS = 10


async def measure(bench: Bench, report: Report, cold: ColdResult, workers: list[int]) -> None:
    session, base, sampler, frames = bench.session, bench.base, bench.sampler, bench.frames
    stub = bench.stub
    section(f"{SINGLE_FLIGHT_REQUESTS} identical concurrent cold requests ({LARGE}²)")
    sampler.phase = "single-flight"
    frame = frames["single_flight"][0]
    text = await metrics(session, base)
    renders_before = metric(text, "thumbservice_renders_total")
    render_before = metric(text, "thumbservice_render_duration_seconds_sum")
    joins_before = metric(text, "thumbservice_single_flight_joins_total")
    started = time.perf_counter()
    cpu_before = workers_times(workers)
    answers = await asyncio.gather(
        *(
            fetch(session, f"{base}/{frame.frame_id}/?width=200&height=200")
            for _ in range(SINGLE_FLIGHT_REQUESTS)
        )
    )
    wall = time.perf_counter() - started
    cpu_after = workers_times(workers)
    text = await metrics(session, base)
    renders = metric(text, "thumbservice_renders_total") - renders_before
    joins = metric(text, "thumbservice_single_flight_joins_total") - joins_before
    render = metric(text, "thumbservice_render_duration_seconds_sum") - render_before
    downloads = stub.downloads[frame.frame_id]
    latencies = [a.seconds for a in answers]
    ok = sum(a.status == 200 for a in answers)
    print(
        f"downloads on the archive {downloads}, renders {renders:.0f}, joins {joins:.0f}, "
        f"200 answers {ok}/{len(answers)}, wall {ms(wall)} "
        f"({wall / cold.median:.2f}x one cold request; render in the worker {ms(render)}: "
        f"user {ms(cpu_after[0] - cpu_before[0])}, sys {ms(cpu_after[1] - cpu_before[1])}); "
        f"latencies {ms(min(latencies))} to {ms(max(latencies))}"
    )
    if downloads != 1 or renders != 1 or ok != len(answers):
        report.problem(
            f"single flight: {downloads} downloads, {renders:.0f} renders, {ok} answers 200"
        )
    report.add(
        f"{SINGLE_FLIGHT_REQUESTS} identical cold requests",
        f"{downloads} download, {renders:.0f} render, {ok}x 200",
        f"wall {ms(wall)} ({wall / cold.median:.2f}x one cold request), render {ms(render)}",
    )
