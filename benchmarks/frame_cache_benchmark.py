"""Decode once: further views of a frame drawn from its kept picture, against the same views
rendered cold, through the service (`python -m thumbservice`, one render worker, the archive
stand-in and moto's S3 server).

Two services run side by side on the same files: one with the frame cache (the default
`FRAME_CACHE_BYTES`), one with `FRAME_CACHE_BYTES=0` (the service before the cache). Both are
warm (workers started, another frame rendered) before anything is measured. A "cold" view is a
frame id new to the service; the ids share one file per kind, so every cold view decodes the
same pixels (a new id is a new frame to the cache: its key names the record).

* **The cascade**, on the cached service: a 4096² frame at 200 px (cold), then 1000 px, 4000 px
  and 200 px with another label; each later view is compared with the same view rendered cold
  on the same service (and on the cache-less one). The archive's download count must not move.
* **Color**: a composite of three 4096² frames at 600 px, then 4000 px, against 4000 px cold.
* **Cold is not slower**: cold 200 px and 4000 px requests alternate between the two services
  (`COLD_PAIRS` pairs), medians compared.
* **Same bytes**: each cascade view against the cache-less service's answer to the same request.
* **Worker memory**: each render worker's anonymous RSS (the part `RENDER_MEMORY_LIMIT` bounds;
  the kept picture is a shared file mapping, counted apart) sampled every 20 ms.

One run; each figure is one request unless it says median. Exits 1 when a goal is missed.
Run from the repository root with `.venv/bin/python benchmarks/frame_cache_benchmark.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import sys
import threading
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

from tests.support.metrics import metric  # noqa: E402

from benchmarks.service.client import fetch, metrics  # noqa: E402
from benchmarks.service.harness import (  # noqa: E402
    BenchFrame,
    Service,
    start_service,
    stop_service,
    wait_ready,
    write_frames,
)
from benchmarks.service.proc import descendants, kind_of, proc_status  # noqa: E402
from benchmarks.service.report import Report, ms, section  # noqa: E402
from benchmarks.service.run import Run  # noqa: E402
from thumbservice.adapters.archive.dev.frames import FrameSpec  # noqa: E402

SIZE = 4096
COLD_PAIRS = 5
LABEL = "ogg1m001-fa16-20261201-0001-e91"


@dataclasses.dataclass
class Ids:
    """Frame ids handed out one at a time: each is new to both services."""

    frames: dict[str, list[BenchFrame]]
    next_bw: int = 0
    next_color: int = 0

    def bw(self) -> int:
        self.next_bw += 1
        return self.frames["bw"][self.next_bw - 1].frame_id

    def color(self) -> int:
        self.next_color += 1
        return self.frames["color"][3 * (self.next_color - 1)].frame_id


def make_frames(directory: Path) -> dict[str, list[BenchFrame]]:
    """One 4096² file, served under 60 ids; three 4096² color files under 8 requests; a small
    frame to warm up on."""
    bw = FrameSpec("ogg1m001-fa16-20261201-0001-e91", width=SIZE, height=SIZE, field_seed=71)
    warm = FrameSpec("ogg1m001-fa16-20261201-0002-e91", width=512, height=512, field_seed=72)
    color = [
        FrameSpec(f"ogg1m001-fa16-20261201-001{i}-e91", width=SIZE, height=SIZE, filter=f,
                  field_seed=73, noise_seed=i, offset=o, rotation_deg=r)
        for i, (f, o, r) in enumerate(
            [("rp", (0.0, 0.0), 0.0), ("V", (12.0, -7.0), 0.4), ("B", (-9.0, 5.0), -0.3)]
        )
    ]  # fmt: skip
    paths = write_frames([bw, warm, *color], directory)  # before any thread exists
    frames: dict[str, list[BenchFrame]] = {
        "bw": [BenchFrame(7000 + n, bw, paths[0]) for n in range(60)],
        "warm": [BenchFrame(6999, warm, paths[1])],
        "color": [],
    }
    for request in range(8):
        for channel, spec in enumerate(color):
            frame_id = 7100 + 3 * request + channel
            same_request = dataclasses.replace(spec, request_id=5000000 + request)
            frames["color"].append(BenchFrame(frame_id, same_request, paths[2 + channel]))
    return frames


class AnonSampler:
    """The largest RssAnon (and VmRSS) of any render worker of the services, every 20 ms."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.anon = 0
        self.rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> AnonSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for parent in self.pids:
                for pid in descendants(parent):
                    if kind_of(pid) != "render worker":
                        continue
                    self.anon = max(self.anon, proc_status(pid, "RssAnon"))
                    self.rss = max(self.rss, proc_status(pid, "VmRSS"))


async def get(session: aiohttp.ClientSession, service: Service, frame_id: int, query: str):
    answer = await fetch(session, f"{service.base}/{frame_id}/?{query}&image=true")
    if answer.status != 200:
        raise RuntimeError(f"{query} answered {answer.status}: {answer.body[:200]!r}")
    return answer


async def run(
    cached: Service, plain: Service, ids: Ids, downloads: dict[int, int], report: Report
) -> None:
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(wait_ready(session, cached), wait_ready(session, plain))
        warm = 6999
        for service in (cached, plain):
            for size in (100, 300):
                await get(session, service, warm, f"width={size}&height={size}")
        pids = [cached.process.pid, plain.process.pid]
        with AnonSampler(pids) as sampler:
            await measure(session, cached, plain, ids, downloads, report)
        text = await metrics(session, cached.base)
        report.add(
            "frame cache after the run",
            f"{metric(text, 'thumbservice_frame_cache_lookups_total', result='hit'):.0f} hits, "
            f"{metric(text, 'thumbservice_frame_cache_lookups_total', result='miss'):.0f} misses",
            f"{metric(text, 'thumbservice_frame_cache_bytes') / 2**20:.0f} MiB in use, "
            f"{metric(text, 'thumbservice_frame_cache_evictions_total'):.0f} evictions",
        )
        limit = 512 * 1024
        report.add(
            "render worker peak (both services)",
            f"RssAnon {sampler.anon / 1024:.0f} MiB, VmRSS {sampler.rss / 1024:.0f} MiB",
            f"RENDER_MEMORY_LIMIT {limit // 1024} MiB of data; VmRSS counts the mapped picture",
        )
        if sampler.anon > limit:
            report.problem(
                f"a render worker held {sampler.anon / 1024:.0f} MiB of anonymous memory"
            )


async def measure(
    session: aiohttp.ClientSession,
    cached: Service,
    plain: Service,
    ids: Ids,
    downloads: dict[int, int],
    report: Report,
) -> None:
    section("Cold: alternating between the service with the cache and the one without")
    for size in (200, 4000):
        times: dict[str, list[float]] = {"cached": [], "plain": []}
        pairs = COLD_PAIRS if size == 200 else 3
        for _ in range(pairs):
            for name, service in (("cached", cached), ("plain", plain)):
                answer = await get(session, service, ids.bw(), f"width={size}&height={size}")
                times[name].append(answer.seconds)
        on, off = statistics.median(times["cached"]), statistics.median(times["plain"])
        print(f"{size} px cold: with cache {[ms(t) for t in times['cached']]}")
        print(f"{size} px cold: without    {[ms(t) for t in times['plain']]}")
        report.add(
            f"cold {size} px, median of {pairs}",
            f"{ms(on)} with the cache, {ms(off)} without",
            f"{on / off:.2f}x",
        )
        if on > 1.05 * off:
            report.problem(f"cold {size} px is {on / off:.2f}x slower with the cache")

    section("The cascade: one 4096² frame, four views")
    cascade = [
        ("200 px", f"width=200&height=200&label={LABEL}"),
        ("1000 px", "width=1000&height=1000"),
        ("4000 px", "width=4000&height=4000"),
        ("200 px, another label", "width=200&height=200&label=another%20label"),
    ]
    frame = ids.bw()
    seen: list[tuple[str, str, float, bytes]] = []
    for name, query in cascade:
        answer = await get(session, cached, frame, query)
        seen.append((name, query, answer.seconds, answer.body))
    if downloads.get(frame, 0) != 1:
        report.problem(f"the cascade downloaded the frame {downloads.get(frame, 0)} times")
    report.add("cascade downloads", f"{downloads.get(frame, 0)}", "goal: 1")
    goals = {"1000 px": 0.2, "4000 px": 0.6, "200 px, another label": 0.2}
    for name, query, seconds, body in seen[1:]:
        # Two more draws of the same view (another quality each: a new thumbnail), and the
        # view cold on three new ids of each service: medians of 3.
        drawn = [seconds]
        for quality in (79, 78):
            again = await get(session, cached, frame, f"{query}&quality={quality}")
            drawn.append(again.seconds)
        colds, todays = [], []
        for _ in range(3):
            cold = await get(session, cached, ids.bw(), query)
            today = await get(session, plain, ids.bw(), query)
            colds.append(cold.seconds)
            todays.append(today.seconds)
        mid, mid_cold, mid_today = (statistics.median(v) for v in (drawn, colds, todays))
        ratio = mid / mid_cold
        print(
            f"{name}: from the picture {[ms(t) for t in drawn]}, cold {[ms(t) for t in colds]}"
            f" (without the cache {[ms(t) for t in todays]}); same bytes: {body == today.body}"
        )
        report.add(
            f"cascade {name}, medians of 3",
            f"{ms(mid)} vs {ms(mid_cold)} cold",
            f"{ratio:.2f}x (goal {goals[name]}x); {mid / mid_today:.2f}x the cache-less",
        )
        if ratio > goals[name]:
            report.problem(f"{name} from the picture is {ratio:.2f}x its cold view")
        if body != today.body or body != cold.body:
            report.problem(f"{name}: the bytes differ from a fresh render's")
    first = await get(session, plain, ids.bw(), cascade[0][1])
    if first.body != seen[0][3]:
        report.problem("200 px: the bytes differ from a fresh render's")

    section("Color: 600 px, then 4000 px")
    composite = ids.color()
    small = await get(session, cached, composite, "width=600&height=600&color=true")
    large = await get(session, cached, composite, "width=4000&height=4000&color=true")
    cold = await get(session, cached, ids.color(), "width=4000&height=4000&color=true")
    today = await get(session, plain, ids.color(), "width=4000&height=4000&color=true")
    red = composite
    fetched = [downloads.get(red + i, 0) for i in range(3)]
    ratio = large.seconds / cold.seconds
    print(
        f"600 px {ms(small.seconds)} (cold), 4000 px from the picture {ms(large.seconds)}, "
        f"4000 px cold {ms(cold.seconds)} (without the cache {ms(today.seconds)}); "
        f"downloads {fetched}; same bytes: {large.body == today.body}"
    )
    report.add(
        "color 4000 px after 600 px",
        f"{ms(large.seconds)} vs {ms(cold.seconds)} cold",
        f"{ratio:.2f}x (goal 0.5x); downloads {fetched}",
    )
    if ratio > 0.5:
        report.problem(f"color 4000 px from the picture is {ratio:.2f}x its cold view")
    if fetched != [1, 1, 1]:
        report.problem(f"color: the frames were downloaded {fetched} times")
    if large.body != today.body or large.body != cold.body:
        report.problem("color 4000 px: the bytes differ from a fresh render's")


def print_generated(frames: dict[str, list[BenchFrame]], started: float) -> None:
    """The time since `started` the frames took."""
    print(f"Generated the frames in {time.perf_counter() - started:.1f} s")


def main() -> int:
    bench = Run()
    with bench.stack("thumbservice-frame-cache-bench-", make_frames, print_generated) as stack:
        root, endpoint, workdir = stack.stub.root, stack.endpoint, stack.workdir
        env = {"RENDER_WORKERS": "1", "LEASES": "off"}
        cached = start_service(root, endpoint, workdir, env, name="cached")
        plain = start_service(
            root, endpoint, workdir, {**env, "FRAME_CACHE_BYTES": "0"}, name="plain"
        )
        children: list[int] = []
        try:
            time.sleep(1)
            children = [p for s in (cached, plain) for p in descendants(s.process.pid)]
            asyncio.run(run(cached, plain, Ids(stack.frames), stack.stub.downloads, bench.report))
        finally:
            children += [p for s in (cached, plain) for p in descendants(s.process.pid)]
            for service in (cached, plain):
                stop_service(service, sorted(set(children)))
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
