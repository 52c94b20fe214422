"""The running service, end to end: the real `python -m thumbservice` over HTTP.

Generates realistic RICE `.fits.fz` frames (4096x4096 and 2048x2048) into a temporary
directory, serves them from the archive stand-in of the tests (in a thread of this process),
keeps thumbnails in moto's S3 server (also in this process), starts the service as a subprocess
with RENDER_WORKERS=2 and measures, in one run:

* cold latency of a thumbnail at 200 px (lookup, download, render in a worker, S3 upload), the
  median over 3 different frames, against a bare `fits_to_jpg` of the same frames here, with
  the render time (from /metrics) and the render's user and system CPU time (from /proc);
* warm (cached) latency percentiles and throughput with 16 concurrent clients, JSON and
  `image=true`, with the CPU time the service and this process spent per request;
* 10 identical concurrent cold requests: downloads seen by the archive, renders, answers;
* /healthz latency while 4 large renders queue behind the 2 workers;
* peak RSS of the service and its worker processes (sampled from /proc every 50 ms), and the
  service's VmHWM.

Run from the repository root with `.venv/bin/python benchmarks/service_benchmark.py`.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

from tests.support.archive_server import ArchiveStub  # noqa: E402
from tests.support.metrics import metric, samples  # noqa: E402

from benchmarks.service.client import fetch, metrics  # noqa: E402
from benchmarks.service.harness import (  # noqa: E402
    LARGE,
    SMALL,
    BenchFrame,
    Service,
    archive_in_thread,
    generate_frames,
    print_generated,
    s3_server,
    start_service,
    stop_service,
    wait_ready,
    wait_workers_settled,
)
from benchmarks.service.proc import (  # noqa: E402
    CpuMeter,
    RssSampler,
    descendants,
    load_average,
    proc_status,
    workers_times,
)
from benchmarks.service.report import (  # noqa: E402
    Report,
    mib,
    ms,
    percentile,
    print_findings,
    print_summary,
    section,
)

CLIENTS = 16
WARM_SECONDS = 5.0
WARM_MAX_REQUESTS = 2000
SINGLE_FLIGHT_REQUESTS = 10
HEALTH_INTERVAL = 0.020


# ---------------------------------------------------------------------------------------------
# HTTP measurements


@dataclass
class LoadResult:
    latencies: list[float]
    statuses: Counter[int]
    seconds: float
    body_bytes: int
    service_cpu: float
    own_cpu: float

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


async def load(session: aiohttp.ClientSession, url: str, service_pid: int) -> LoadResult:
    """CLIENTS clients in a closed loop for WARM_SECONDS or WARM_MAX_REQUESTS requests."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    issued = 0
    body_bytes = 0
    meter = CpuMeter(service_pid)
    deadline = meter.started + WARM_SECONDS

    async def client() -> None:
        nonlocal issued, body_bytes
        while issued < WARM_MAX_REQUESTS and time.perf_counter() < deadline:
            issued += 1
            answer = await fetch(session, url)
            statuses[answer.status] += 1
            latencies.append(answer.seconds)
            body_bytes += len(answer.body)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    service_cpu, own_cpu, seconds = meter.read()
    return LoadResult(latencies, statuses, seconds, body_bytes, service_cpu, own_cpu)


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


# ---------------------------------------------------------------------------------------------
# The run


async def measure(
    service: Service,
    stub: ArchiveStub,
    frames: dict[str, list[BenchFrame]],
    workdir: Path,
    report: Report,
) -> list[int]:
    base = service.base
    sampler = RssSampler(service.process.pid)
    sampler.start()
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
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

        # -- cold latency through the service, then bare fits_to_jpg on the same frames
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

        # -- warm, cached: JSON then image=true
        warm_results: dict[str, LoadResult] = {}
        target = frames["cold"][0].frame_id
        for mode, query in (("json", ""), ("image", "&image=true")):
            sampler.phase = f"warm-{mode}"
            url = f"{base}/{target}/?width=200&height=200{query}"
            hits_before = metric(
                await metrics(session, base), "thumbservice_cache_lookups_total", result="hit"
            )
            for _ in range(20):  # connections opened, before timing
                await fetch(session, url)
            result = await load(session, url, service.process.pid)
            hits = metric(
                await metrics(session, base), "thumbservice_cache_lookups_total", result="hit"
            )
            warm_results[mode] = result
            section(f"Warm (cached) thumbnail, {mode}, {CLIENTS} concurrent clients")
            print(
                f"{result.count} requests in {result.seconds:.2f} s: {result.throughput:.0f} req/s;"
                f" p50 {ms(result.p(50))}, p95 {ms(result.p(95))}, p99 {ms(result.p(99))},"
                f" max {ms(max(result.latencies))}; statuses {dict(result.statuses)};"
                f" {result.body_bytes / result.count:.0f} B per answer;"
                f" cache hits counted {hits - hits_before:.0f}"
            )
            print(
                f"  CPU: service {result.service_cpu / result.seconds:.0%} of a core"
                f" ({result.service_cpu / result.count * 1000:.2f} ms per request);"
                f" this process (clients + archive stub + moto) "
                f"{result.own_cpu / result.seconds:.0%}"
            )
            if set(result.statuses) != {200}:
                report.problem(f"warm {mode} answers: {dict(result.statuses)}")
            report.add(
                f"warm {mode}: p50 / p95 / p99",
                f"{ms(result.p(50))} / {ms(result.p(95))} / {ms(result.p(99))}",
                f"{CLIENTS} clients, {result.count} requests",
            )
            report.add(
                f"warm {mode}: throughput",
                f"{result.throughput:.0f} req/s",
                f"service CPU {result.service_cpu / result.count * 1000:.2f} ms/req, "
                f"{result.service_cpu / result.seconds:.0%} of a core",
            )
        json_r, image_r = warm_results["json"], warm_results["image"]
        report.add(
            "warm image/json",
            f"{image_r.throughput / json_r.throughput:.2f}x throughput",
            f"p50 {image_r.p(50) / json_r.p(50):.2f}x",
        )
        report.add("cold/warm p50 (json)", f"{cold.median / json_r.p(50):.0f}x", "")

        # -- single flight
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

        # -- health probes, idle then under 4 big renders
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

        # -- what is left: errors in the metrics, scratch space, memory high-water marks
        sampler.phase = "end"
        text = await metrics(session, base)
        errors = {
            (labels["route"], labels["status"]): value
            for labels, value in samples(text, "thumbservice_requests_total")
            if not labels["status"].startswith("2")
        }
        if errors:
            report.note(f"non-2xx answers counted by the service: {errors}")
        store_failures = metric(text, "thumbservice_store_failures_total")
        if store_failures:
            report.note(f"store failures counted: {store_failures:.0f}")
    leftovers = sorted(p.name for p in service.scratch.iterdir())
    if leftovers:
        report.problem(f"TMP_DIR not empty before shutdown: {leftovers}")

    section("Memory (VmRSS sampled every 50 ms from /proc)")
    hwm = proc_status(service.process.pid, "VmHWM")
    worker_pids = sampler.workers()
    worker_hwm = [proc_status(pid, "VmHWM") for pid in worker_pids]
    children = descendants(service.process.pid)
    sampler.stop()
    kinds = Counter(sampler.kind(pid) for pid in children)
    print(f"processes under the service: {dict(kinds)}; {sampler.samples} samples")
    print(f"{'phase':<15}{'service':>10}{'workers':>10}{'1 worker':>10}{'total':>10}")
    for phase, peaks in [*sampler.peaks.items(), ("overall", sampler.overall)]:
        print(
            f"{phase:<15}{mib(peaks.service):>10}{mib(peaks.workers):>10}"
            f"{mib(peaks.largest_worker):>10}{mib(peaks.total):>10}"
        )
    frame_mib = LARGE * LARGE * 4 / 2**20
    print(
        f"VmHWM: service {mib(hwm)}, workers {', '.join(mib(h) for h in worker_hwm)} "
        f"(a {LARGE}² float32 image is {frame_mib:.0f} MiB)"
    )
    overall = sampler.overall
    report.add("peak RSS service process", mib(overall.service), f"VmHWM {mib(hwm)}")
    report.add(
        "peak RSS render workers",
        f"{mib(overall.workers)} both, {mib(overall.largest_worker)} one",
        f"VmHWM {' / '.join(mib(h) for h in worker_hwm)}; "
        f"one = {overall.largest_worker / 1024 / frame_mib:.1f}x a {LARGE}² float32 image",
    )
    report.add("peak RSS service + children", mib(overall.total), "at one instant")
    return children


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


def main() -> int:
    started = time.perf_counter()
    report = Report()
    load_before = load_average()
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load_before} before the run")
    with tempfile.TemporaryDirectory(prefix="thumbservice-bench-") as tmp:
        workdir = Path(tmp)
        frames = generate_frames(workdir / "frames")
        print_generated(frames, started)
        children: list[int] = []
        with archive_in_thread(workdir / "frames", frames) as stub, s3_server() as endpoint:
            service = start_service(stub.root, endpoint, workdir)
            try:
                children = asyncio.run(measure(service, stub, frames, workdir, report))
            finally:
                stop_service(service, children)

        section("Shutdown")
        print(
            f"SIGTERM -> exit {service.exit_code} in "
            + (f"{service.stopped_in:.2f} s" if service.stopped_in is not None else "(killed)")
        )
        if service.exit_code != 0:
            report.problem(f"the service exited with {service.exit_code}")
        if service.survivors:
            report.note(f"processes of the service still alive 5 s after it: {service.survivors}")
        else:
            print(f"its {len(children)} child processes were gone too")
        leftovers = sorted(str(p.relative_to(service.scratch)) for p in service.scratch.rglob("*"))
        print(f"TMP_DIR after shutdown: {leftovers or 'empty'}")
        if leftovers:
            report.note(f"TMP_DIR not empty after shutdown: {leftovers}")
        log_lines = service.log_path.read_text(errors="replace").splitlines()
        print(f"service log (LOG_LEVEL=WARNING): {len(log_lines)} lines")
        for line in log_lines[:10]:
            print(f"  {line[:300]}")
        if log_lines:
            report.note(f"the service logged {len(log_lines)} warning/error lines")
        report.add("SIGTERM to exit", f"{service.stopped_in or float('nan'):.2f} s", "")
        report.add("TMP_DIR after the run", "empty" if not leftovers else f"{len(leftovers)} left")
        shutil.rmtree(workdir / "frames", ignore_errors=True)

    report.add("1-min load average, start / end", f"{load_before} / {load_average()}", "")
    print_summary(report)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")
    print_findings(report)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
