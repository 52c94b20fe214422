"""Memory: the peaks of VmRSS the sampler saw in each phase (service, render workers, all at
one instant), and VmHWM of the service and of each worker. Stops the sampler."""

from __future__ import annotations

from collections import Counter

from benchmarks.service.harness import LARGE, Bench
from benchmarks.service.proc import descendants, proc_status
from benchmarks.service.report import Report, mib, section


def measure(bench: Bench, report: Report) -> list[int]:
    """The processes below the service, which the shutdown expects to be gone after it."""
    service, sampler = bench.service, bench.sampler
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
