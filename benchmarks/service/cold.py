"""Cold latency of a 200 px thumbnail, one request after the other on frames no request has
touched (3 of 4096², then 3 of 2048²), against a bare `fits_to_jpg` of the same frames in this
process."""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from tests.support.metrics import metric

from benchmarks.service.client import fetch, metrics
from benchmarks.service.harness import LARGE, SMALL, Bench, BenchFrame
from benchmarks.service.proc import workers_times
from benchmarks.service.report import Report, ms, section


@dataclass
class ColdResult:
    latencies: list[float] = field(default_factory=list)
    render_seconds: list[float] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # render (user, sys) seconds
    statuses: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def median_render(self) -> float:
        return statistics.median(self.render_seconds)

    def describe(self) -> str:
        return "; ".join(
            f"{ms(latency)} (render {ms(render)}: user {ms(user)}, sys {ms(system)})"
            for latency, render, (user, system) in zip(
                self.latencies, self.render_seconds, self.cpu, strict=True
            )
        )


@dataclass
class ColdRun:
    """What the later measurements compare with: the 4096² requests through the service, and the
    render workers as they were found when the cold requests began."""

    large: ColdResult
    workers: list[int]


async def cold_requests(
    session: aiohttp.ClientSession,
    base: str,
    frames: list[BenchFrame],
    query: str,
    workers: list[int],
) -> ColdResult:
    """One frame after the other. The render time of each comes from the service's metrics, its
    CPU time (user and system) from /proc of the worker processes."""
    result = ColdResult()
    for frame in frames:
        before = metric(await metrics(session, base), "thumbservice_render_duration_seconds_sum")
        cpu_before = workers_times(workers)
        answer = await fetch(session, f"{base}/{frame.frame_id}/?{query}")
        cpu_after = workers_times(workers)
        after = metric(await metrics(session, base), "thumbservice_render_duration_seconds_sum")
        result.latencies.append(answer.seconds)
        result.render_seconds.append(after - before)
        result.cpu.append((cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]))
        result.statuses.append(answer.status)
    return result


def bare_renders(frames: list[BenchFrame], out_dir: Path) -> ColdResult:
    """fits_to_jpg here, on this thread (whose CPU time is what getrusage(RUSAGE_THREAD) gives)."""
    from fits2image.conversions import fits_to_jpg

    result = ColdResult()
    for frame in frames:
        output = out_dir / f"bare-{frame.frame_id}.jpg"
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        started = time.perf_counter()
        if not fits_to_jpg(str(frame.path), str(output), width=200, height=200):
            raise RuntimeError(f"fits_to_jpg failed on {frame.path.name}")
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_THREAD)
        result.latencies.append(seconds)
        result.render_seconds.append(seconds)
        result.cpu.append((after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime))
        result.statuses.append(200)
    return result


async def measure(bench: Bench, report: Report, first_render: float) -> ColdRun:
    session, base, sampler, frames = bench.session, bench.base, bench.sampler, bench.frames
    workdir = bench.workdir
    section(f"Cold thumbnails, 200 px (median of {len(frames['cold'])} different frames)")
    sampler.phase = "cold"
    workers = sampler.workers()
    query = "width=200&height=200"
    cold = await cold_requests(session, base, frames["cold"], query, workers)
    cold_small = await cold_requests(session, base, frames["cold_small"], query, workers)
    for label, result in ((f"{LARGE}²", cold), (f"{SMALL}²", cold_small)):
        if any(s != 200 for s in result.statuses):
            report.problem(f"cold {label} answers: {result.statuses}")
    sampler.phase = "bare"
    bare_renders(frames["warmup"][:1], workdir)  # imports and first-call costs, untimed
    bare = bare_renders(frames["cold"], workdir)
    bare_small = bare_renders(frames["cold_small"], workdir)
    for label, result, alone in (
        (f"{LARGE}x{LARGE}", cold, bare),
        (f"{SMALL}x{SMALL}", cold_small, bare_small),
    ):
        outside = statistics.median(
            t - r for t, r in zip(result.latencies, result.render_seconds, strict=True)
        )
        best = min(result.latencies) / min(alone.latencies)
        print(f"{label} through the service: {result.describe()}")
        print(f"{label} bare fits_to_jpg:      {alone.describe()}")
        print(
            f"  median service {ms(result.median)} / bare {ms(alone.median)} = "
            f"{result.median / alone.median:.2f}x (best of 3: {best:.2f}x); "
            f"median time outside the render (lookup, download, hop, S3) {ms(outside)}"
        )
        report.add(f"cold {label} @200px, service", ms(result.median), "median of 3 frames")
        report.add(f"cold {label} @200px, bare fits_to_jpg", ms(alone.median), "median of 3")
        report.add(
            f"cold {label} ratio service/bare",
            f"{result.median / alone.median:.2f}x",
            f"best of 3: {best:.2f}x",
        )
        report.add(
            f"cold {label} outside the render",
            ms(outside),
            f"{outside / result.median:.0%} of the median request",
        )
    large_cpu = [*cold.cpu, *bare.cpu]
    report.add(
        f"system CPU of one {LARGE}² render",
        f"{ms(min(c[1] for c in large_cpu))} to {ms(max(c[1] for c in large_cpu))}",
        f"user CPU {ms(min(c[0] for c in large_cpu))} to {ms(max(c[0] for c in large_cpu))}"
        " (service and bare)",
    )
    report.add(
        "first render on a fresh worker",
        ms(first_render),
        f"{first_render / cold_small.median_render:.1f}x a later {SMALL}² render",
    )
    return ColdRun(cold, workers)
