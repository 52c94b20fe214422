"""The warm path without the service's caches, in the same run, as the baseline of warm.py.

A second service on the same archive stand-in and S3 server, with CACHE_EXISTENCE_TTL=0 and
MEMORY_CACHE_BYTES=0: every JSON hit costs a HEAD and a fresh signature, every `image=true` hit
a GET, as before the caches existed. Same thumbnail, same clients, same loads.
"""

from __future__ import annotations

from benchmarks.service.client import fetch
from benchmarks.service.harness import Bench, start_service, stop_service, wait_ready
from benchmarks.service.report import Report, ms, section
from benchmarks.service.warm import CLIENTS, LoadResult, load

NO_CACHES = {"CACHE_EXISTENCE_TTL": "0", "MEMORY_CACHE_BYTES": "0", "RENDER_WORKERS": "1"}


async def measure(bench: Bench, report: Report, cached: dict[tuple[str, int], LoadResult]) -> None:
    service = start_service(
        bench.stub.root, bench.s3_endpoint, bench.workdir, NO_CACHES, name="baseline"
    )
    baseline: dict[tuple[str, int], LoadResult] = {}
    try:
        await wait_ready(bench.session, service)
        target = bench.frames["cold"][0].frame_id  # rendered and stored by the first service
        for mode, query in (("json", ""), ("image", "&image=true")):
            url = f"{service.base}/{target}/?width=200&height=200{query}"
            for _ in range(20):
                await fetch(bench.session, url)
            for clients in (1, CLIENTS):
                baseline[(mode, clients)] = await load(
                    bench.session, url, service.process.pid, clients
                )
    finally:
        stop_service(service, [])
    section("Warm path with the caches against without them (same run, same stack)")
    print(f"{'':28}{'p50 without':>13}{'p50 with':>10}{'req/s without':>15}"
          f"{'req/s with':>12}{'ratio':>7}{'CPU ms/req without':>20}{'with':>6}")  # fmt: skip
    for (mode, clients), before in baseline.items():
        after = cached[(mode, clients)]
        if set(before.statuses) != {200}:
            report.problem(f"baseline warm {mode} answers: {dict(before.statuses)}")
        label = f"{mode}, {clients} client{'s' if clients > 1 else ''}"
        ratio = after.throughput / before.throughput
        before_cpu = before.service_cpu / before.count * 1000
        after_cpu = after.service_cpu / after.count * 1000
        print(
            f"{label:28}{ms(before.p(50)):>13}{ms(after.p(50)):>10}"
            f"{before.throughput:>15.0f}{after.throughput:>12.0f}{ratio:>6.2f}x"
            f"{before_cpu:>20.2f}{after_cpu:>6.2f}"
        )
        report.add(
            f"warm {label}: with / without caches",
            f"{ratio:.2f}x req/s",
            f"p50 {ms(after.p(50))} vs {ms(before.p(50))}; "
            f"CPU {after_cpu:.2f} vs {before_cpu:.2f} ms/req",
        )
