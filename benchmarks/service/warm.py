"""Warm (cached) latency and throughput: one client, then CLIENTS clients, in a closed loop on a
thumbnail already rendered, in JSON mode and then with `image=true`, with the CPU time of the
service and of this process per request."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
from tests.support.metrics import metric

from benchmarks.service.client import fetch, metrics
from benchmarks.service.cold import ColdResult
from benchmarks.service.harness import Bench
from benchmarks.service.proc import CpuMeter
from benchmarks.service.report import Report, ms, percentile, section

CLIENTS = 16
WARM_SECONDS = 5.0
WARM_MAX_REQUESTS = 2000


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


async def load(
    session: aiohttp.ClientSession, url: str, service_pid: int, clients: int = CLIENTS
) -> LoadResult:
    """`clients` clients in a closed loop for WARM_SECONDS or WARM_MAX_REQUESTS requests."""
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

    await asyncio.gather(*(client() for _ in range(clients)))
    service_cpu, own_cpu, seconds = meter.read()
    return LoadResult(latencies, statuses, seconds, body_bytes, service_cpu, own_cpu)


async def measure(
    bench: Bench, report: Report, cold: ColdResult
) -> dict[tuple[str, int], LoadResult]:
    """Every load, by (mode, clients), for the comparison with the service without caches."""
    session, base, sampler, frames = bench.session, bench.base, bench.sampler, bench.frames
    service = bench.service
    warm_results: dict[str, LoadResult] = {}
    every: dict[tuple[str, int], LoadResult] = {}
    target = frames["cold"][0].frame_id
    for mode, query in (("json", ""), ("image", "&image=true")):
        url = f"{base}/{target}/?width=200&height=200{query}"
        for _ in range(20):  # connections opened, before timing
            await fetch(session, url)
        for clients in (1, CLIENTS):
            sampler.phase = f"warm-{mode}"
            hits_before = metric(
                await metrics(session, base), "thumbservice_cache_lookups_total", result="hit"
            )
            result = await load(session, url, service.process.pid, clients)
            every[(mode, clients)] = result
            hits = metric(
                await metrics(session, base), "thumbservice_cache_lookups_total", result="hit"
            )
            if clients == CLIENTS:
                warm_results[mode] = result
            who = "1 client" if clients == 1 else f"{clients} concurrent clients"
            section(f"Warm (cached) thumbnail, {mode}, {who}")
            print(
                f"{result.count} requests in {result.seconds:.2f} s: "
                f"{result.throughput:.0f} req/s; p50 {ms(result.p(50))}, "
                f"p95 {ms(result.p(95))}, p99 {ms(result.p(99))}, "
                f"max {ms(max(result.latencies))}; statuses {dict(result.statuses)};"
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
                f"warm {mode}, {who}: p50 / p95 / p99",
                f"{ms(result.p(50))} / {ms(result.p(95))} / {ms(result.p(99))}",
                f"{result.count} requests",
            )
            report.add(
                f"warm {mode}, {who}: throughput",
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
    return every
