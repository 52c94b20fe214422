"""What the measurements left, before shutdown: answers other than 2xx and store failures that
the service counted, and files in its TMP_DIR."""

from __future__ import annotations

from tests.support.metrics import metric, samples

from benchmarks.service.client import metrics
from benchmarks.service.harness import Bench
from benchmarks.service.report import Report
from thumbservice.adapters.rendering.framecache import is_cache_directory


async def counted_by_the_service(bench: Bench, report: Report) -> None:
    session, base, sampler = bench.session, bench.base, bench.sampler
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


def in_scratch(bench: Bench, report: Report) -> None:
    service = bench.service
    # The frame cache's directory lives there for the whole process: not a leftover.
    leftovers = sorted(p.name for p in service.scratch.iterdir() if not is_cache_directory(p))
    if leftovers:
        report.problem(f"TMP_DIR not empty before shutdown: {leftovers}")
