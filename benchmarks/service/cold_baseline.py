"""Cold latency through the service with each renderer, on the same stack in the same run.

cold.py compares the service (with its default renderer) against a bare `fits_to_jpg` in this
process, which pays no lookup, download, hand-off or upload. Here a second service with
RENDERER=fits2image renders the same 4096x4096 frames at 200 px (quality 79, so that the keys,
and so the work, are new), and the two services' cold answers are compared: the renderer is the
only difference.
"""

from __future__ import annotations

from benchmarks.service.client import fetch
from benchmarks.service.cold import ColdResult, cold_requests
from benchmarks.service.harness import Bench, start_service, stop_service, wait_ready
from benchmarks.service.proc import descendants, kind_of
from benchmarks.service.report import Report, ms, section

FITS2IMAGE = {"RENDERER": "fits2image"}


async def measure(bench: Bench, report: Report, fast: ColdResult) -> None:
    service = start_service(
        bench.stub.root, bench.s3_endpoint, bench.workdir, FITS2IMAGE, name="fits2image"
    )
    try:
        await wait_ready(bench.session, service)
        # Both workers started and warm, as the first service's were (its start-up renders).
        warmups = [
            fetch(bench.session, f"{service.base}/{f.frame_id}/?width=200&quality=79")
            for f in bench.frames["warmup"]
        ]
        for warmup in warmups:
            await warmup
        workers = [p for p in descendants(service.process.pid) if kind_of(p) == "render worker"]
        reference = await cold_requests(
            bench.session,
            service.base,
            bench.frames["cold"],
            "width=200&height=200&quality=79",
            workers,
        )
    finally:
        stop_service(service, [])
    if any(s != 200 for s in reference.statuses):
        report.problem(f"cold answers with RENDERER=fits2image: {reference.statuses}")
    ratio = fast.median / reference.median
    section("Cold 4096² at 200 px through the service: RENDERER=fast against RENDERER=fits2image")
    print(f"RENDERER=fits2image: {reference.describe()}")
    print(
        f"  median fast {ms(fast.median)} / fits2image {ms(reference.median)} = {ratio:.2f}x; "
        f"renders (from /metrics) {ms(fast.median_render)} / {ms(reference.median_render)} = "
        f"{fast.median_render / reference.median_render:.2f}x"
    )
    report.add(
        "cold 4096x4096 @200px, service fast / fits2image",
        f"{ratio:.2f}x",
        f"{ms(fast.median)} vs {ms(reference.median)}, medians of 3; renders "
        f"{fast.median_render / reference.median_render:.2f}x",
    )
