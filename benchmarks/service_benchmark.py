"""The running service, end to end: the real `python -m thumbservice` over HTTP.

Generates realistic RICE `.fits.fz` frames (4096x4096 and 2048x2048) into a temporary
directory, serves them from the archive stand-in of the tests (in a thread of this process),
keeps thumbnails in moto's S3 server (also in this process), starts the service as a subprocess
with RENDER_WORKERS=2 and measures, in one run:

* cold latency of a thumbnail at 200 px (lookup, download, render in a worker, S3 upload), the
  median over 3 different frames, against a bare `fits_to_jpg` of the same frames here, with
  the render time (from /metrics) and the render's user and system CPU time (from /proc); and
  against a second service with RENDERER=fits2image on the same frames (the same stack);
* warm (cached) latency percentiles and throughput with 1 and 16 concurrent clients, JSON and
  `image=true`, with the CPU time the service and this process spent per request, and the
  same without the service's caches (a second service with CACHE_EXISTENCE_TTL=0 and
  MEMORY_CACHE_BYTES=0) as the baseline;
* 10 identical concurrent cold requests: downloads seen by the archive, renders, answers;
* /healthz latency while 4 large renders queue behind the 2 workers;
* peak RSS of the service and its worker processes (sampled from /proc every 50 ms), and the
  service's VmHWM.

Run from the repository root with `.venv/bin/python benchmarks/service_benchmark.py`.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

from tests.support.archive_server import ArchiveStub  # noqa: E402

from benchmarks.service import (  # noqa: E402
    cold,
    cold_baseline,
    health,
    leftovers,
    memory,
    shutdown,
    single_flight,
    startup,
    warm,
    warm_baseline,
)
from benchmarks.service.harness import (  # noqa: E402
    Bench,
    BenchFrame,
    Service,
    generate_frames,
    print_generated,
    start_service,
    stop_service,
)
from benchmarks.service.proc import RssSampler  # noqa: E402
from benchmarks.service.report import Report  # noqa: E402
from benchmarks.service.run import Run  # noqa: E402


async def measure(
    service: Service,
    stub: ArchiveStub,
    frames: dict[str, list[BenchFrame]],
    workdir: Path,
    report: Report,
    s3_endpoint: str,
) -> list[int]:
    """The measurements in order, on one client session, with the RSS sampler running from the
    start; returns the processes below the service, which must be gone once it has stopped."""
    sampler = RssSampler(service.process.pid)
    sampler.start()
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        bench = Bench(service, stub, frames, workdir, sampler, session, s3_endpoint)
        first_render = await startup.measure(bench, report)
        cold_run = await cold.measure(bench, report, first_render)
        await cold_baseline.measure(bench, report, cold_run.large)
        cached = await warm.measure(bench, report, cold_run.large)
        await warm_baseline.measure(bench, report, cached)
        await single_flight.measure(bench, report, cold_run.large, cold_run.workers)
        await health.measure(bench, report)
        await leftovers.counted_by_the_service(bench, report)
    leftovers.in_scratch(bench, report)
    return memory.measure(bench, report)


def main() -> int:
    """0 when every request succeeded, single flight held and the service stopped cleanly."""
    run = Run()
    children: list[int] = []
    with run.stack("thumbservice-bench-", generate_frames, print_generated) as stack:
        stub, frames, workdir, endpoint = stack.stub, stack.frames, stack.workdir, stack.endpoint
        service = start_service(stub.root, endpoint, workdir)
        try:
            children = asyncio.run(measure(service, stub, frames, workdir, run.report, endpoint))
        finally:
            stop_service(service, children)
        shutdown.measure(service, children, run.report)
        shutil.rmtree(workdir / "frames", ignore_errors=True)
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
