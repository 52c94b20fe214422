"""Replicas behind a load balancer: 30 identical cold requests spread round-robin over 1 replica,
3 replicas without leases and 3 replicas with leases (`python -m thumbservice` each, one render
worker each, one moto and one archive stand-in for all).

For each: downloads seen by the archive, renders (`thumbservice_renders_total`), answers 200 and
the wall time; with leases, the time a waiting replica's callers got their answer after the
lease owner's callers got theirs.

Then a second size from the same client, the frame cache being per replica: one 4096² frame
at 200 px, 1000 px, 4000 px and 200 px with another label, all sent to one replica (as
`sessionAffinity: ClientIP` would), and another such frame with the views spread round-robin
over 3 replicas (no affinity): the downloads and each view's time.

Exits 0 when every answer was 200 and, with leases, the 3 replicas downloaded and rendered once.
Run from the repository root with `.venv/bin/python benchmarks/cluster_benchmark.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
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
from benchmarks.service.proc import descendants  # noqa: E402
from benchmarks.service.report import Report, ms, section  # noqa: E402
from benchmarks.service.run import Run  # noqa: E402
from thumbservice.adapters.archive.dev.frames import FrameSpec  # noqa: E402

REQUESTS = 30
SIZE = 4096
QUERY = "width=200&height=200"


@dataclass(frozen=True)
class Setup:
    name: str
    replicas: int
    leases: str


SETUPS = (
    Setup("1 replica", 1, "s3"),
    Setup("3 replicas, LEASES=off", 3, "off"),
    Setup("3 replicas, leases", 3, "s3"),
)


@dataclass
class Outcome:
    setup: Setup
    downloads: int
    renders: float
    ok: int
    wall: float
    done_at: list[tuple[int, float]]  # (replica, seconds from the start) of each answer
    won: list[float]
    lost: list[float]


def make_frames(directory: Path) -> dict[str, list[BenchFrame]]:
    """One fresh 4096² frame per setup (the measured one), one 512² frame per setup (warm-up)."""
    specs = []
    plan = [(setup.name, i) for i, setup in enumerate(SETUPS)]
    plan += [(AFFINITY, len(SETUPS)), (ROUND_ROBIN, len(SETUPS) + 1)]
    for name, i in plan:
        for group, size, frame_id in (("cold", SIZE, 9500 + i), ("warm", 512, 8500 + i)):
            spec = FrameSpec(
                f"ogg1m001-fa16-20261127-{frame_id:04d}-e91",
                width=size,
                height=size,
                field_seed=300 + frame_id % 100,
                noise_seed=400 + frame_id % 100,
                request_id=4000000 + frame_id,
            )
            specs.append((f"{group}:{name}", frame_id, spec))
    paths = write_frames([spec for _, _, spec in specs], directory)  # before any thread exists
    frames: dict[str, list[BenchFrame]] = {}
    for (group, frame_id, spec), path in zip(specs, paths, strict=True):
        frames.setdefault(group, []).append(BenchFrame(frame_id, spec, path))
    return frames


async def run_setup(
    setup: Setup,
    frames: dict[str, list[BenchFrame]],
    stub_downloads: dict[int, int],
    archive_root: str,
    endpoint: str,
    workdir: Path,
) -> Outcome:
    slug = setup.name.replace(" ", "-").replace(",", "").replace("=", "-").lower()
    env = {"RENDER_WORKERS": "1", "LEASES": setup.leases}
    services = [
        start_service(archive_root, endpoint, workdir, env, name=f"{slug}-{i}")
        for i in range(setup.replicas)
    ]
    children: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(wait_ready(session, service) for service in services))
            children = [pid for s in services for pid in descendants(s.process.pid)]
            warm = frames[f"warm:{setup.name}"][0]
            # Each replica's worker renders once first: the first render pays for its imports.
            await asyncio.gather(
                *(
                    fetch(session, f"{s.base}/{warm.frame_id}/?width={60 + i}")
                    for i, s in enumerate(services)
                )
            )
            return await measure(setup, services, session, frames, stub_downloads)
    finally:
        for service in services:
            stop_service(service, children)


async def measure(
    setup: Setup,
    services: list[Service],
    session: aiohttp.ClientSession,
    frames: dict[str, list[BenchFrame]],
    stub_downloads: dict[int, int],
) -> Outcome:
    cold = frames[f"cold:{setup.name}"][0]

    async def totals(name: str, **labels: str) -> list[float]:
        return [metric(await metrics(session, s.base), name, **labels) for s in services]

    renders_before = sum(await totals("thumbservice_renders_total"))
    won_before = await totals("thumbservice_leases_total", outcome="won")
    lost_before = await totals("thumbservice_leases_total", outcome="lost")
    started = time.perf_counter()

    async def one(i: int) -> tuple[int, int, float]:
        replica = i % len(services)
        answer = await fetch(session, f"{services[replica].base}/{cold.frame_id}/?{QUERY}")
        return replica, answer.status, time.perf_counter() - started

    answers = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    wall = time.perf_counter() - started
    won = [
        a - b
        for a, b in zip(
            await totals("thumbservice_leases_total", outcome="won"), won_before, strict=True
        )
    ]
    lost = [
        a - b
        for a, b in zip(
            await totals("thumbservice_leases_total", outcome="lost"), lost_before, strict=True
        )
    ]
    return Outcome(
        setup=setup,
        downloads=stub_downloads.get(cold.frame_id, 0),
        renders=sum(await totals("thumbservice_renders_total")) - renders_before,
        ok=sum(status == 200 for _, status, _ in answers),
        wall=wall,
        done_at=[(replica, at) for replica, _, at in answers],
        won=won,
        lost=lost,
    )


AFFINITY = "one replica (affinity)"
ROUND_ROBIN = "round-robin over 3"
VIEWS = (
    ("200 px", "width=200&height=200"),
    ("1000 px", "width=1000&height=1000"),
    ("4000 px", "width=4000&height=4000"),
    ("200 px, another label", "width=200&height=200&label=another%20label"),
)


async def second_sizes(
    frames: dict[str, list[BenchFrame]],
    stub_downloads: dict[int, int],
    archive_root: str,
    endpoint: str,
    workdir: Path,
    report: Report,
) -> None:
    """The views of one frame from one client, on one replica and then spread over three."""
    env = {"RENDER_WORKERS": "1", "LEASES": "s3"}
    services = [
        start_service(archive_root, endpoint, workdir, env, name=f"views-{i}") for i in range(3)
    ]
    children: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(wait_ready(session, service) for service in services))
            children = [pid for s in services for pid in descendants(s.process.pid)]
            warm = frames[f"warm:{AFFINITY}"][0]
            await asyncio.gather(
                *(
                    fetch(session, f"{s.base}/{warm.frame_id}/?width={60 + i}")
                    for i, s in enumerate(services)
                )
            )
            for mode in (AFFINITY, ROUND_ROBIN):
                section(f"A second size from the same client, {mode}")
                frame = frames[f"cold:{mode}"][0]
                times = []
                for i, (name, query) in enumerate(VIEWS):
                    replica = 0 if mode == AFFINITY else i % len(services)
                    url = f"{services[replica].base}/{frame.frame_id}/?{query}&image=true"
                    answer = await fetch(session, url)
                    if answer.status != 200:
                        report.problem(f"{mode}, {name}: answered {answer.status}")
                    times.append(answer.seconds)
                    print(f"{name} on replica {replica}: {ms(answer.seconds)}")
                downloads = stub_downloads.get(frame.frame_id, 0)
                report.add(
                    f"views of one frame, {mode}",
                    f"{downloads} download(s)",
                    ", ".join(f"{n} {ms(t)}" for (n, _), t in zip(VIEWS, times, strict=True)),
                )
                if mode == AFFINITY and downloads != 1:
                    report.problem(f"{mode}: {downloads} downloads for one frame's views")
    finally:
        for service in services:
            stop_service(service, children)


def describe(outcome: Outcome, baseline: Outcome | None, report: Report) -> None:
    setup = outcome.setup
    section(f"{REQUESTS} identical cold requests ({SIZE}²), {setup.name}")
    latencies = [at for _, at in outcome.done_at]
    print(
        f"downloads {outcome.downloads}, renders {outcome.renders:.0f}, 200 answers "
        f"{outcome.ok}/{REQUESTS}, wall {ms(outcome.wall)}; answers from {ms(min(latencies))} "
        f"to {ms(max(latencies))}; leases won {outcome.won}, lost {outcome.lost}"
    )
    note = f"wall {ms(outcome.wall)}"
    if baseline is not None:
        note += f" ({outcome.wall / baseline.wall:.2f}x 1 replica)"
    report.add(
        setup.name,
        f"{outcome.downloads} download(s), {outcome.renders:.0f} render(s), {outcome.ok}x 200",
        note,
    )
    if outcome.ok != REQUESTS:
        report.problem(f"{setup.name}: {outcome.ok} of {REQUESTS} answers were 200")
    if setup.leases == "off" or setup.replicas == 1:
        return
    if outcome.downloads != 1 or outcome.renders != 1:
        report.problem(
            f"{setup.name}: {outcome.downloads} downloads and {outcome.renders:.0f} renders"
        )
    owners = [i for i, won in enumerate(outcome.won) if won]
    if len(owners) != 1:
        report.problem(f"{setup.name}: {len(owners)} replicas won the lease")
        return
    owner_done = max(at for replica, at in outcome.done_at if replica == owners[0])
    extra = [at - owner_done for replica, at in outcome.done_at if replica != owners[0]]
    print(
        f"owner's callers answered at {ms(owner_done)}; a waiting replica's callers "
        f"{ms(statistics.median(extra))} later (median), {ms(max(extra))} at most"
    )
    report.add(
        "waiting replica over the owner",
        f"+{ms(statistics.median(extra))} median, +{ms(max(extra))} max",
        f"owner's answers at {ms(owner_done)}",
    )


def print_generated(frames: dict[str, list[BenchFrame]], started: float) -> None:
    """How many measured frames there are, and the time since `started`."""
    count = sum(len(group) for key, group in frames.items() if key.startswith("cold:"))
    print(f"Generated {count} frames of {SIZE}² in {time.perf_counter() - started:.1f} s")


def main() -> int:
    run = Run()
    with run.stack("thumbservice-cluster-bench-", make_frames, print_generated) as stack:
        frames, stub, endpoint, workdir = stack.frames, stack.stub, stack.endpoint, stack.workdir
        outcomes = [
            asyncio.run(run_setup(setup, frames, stub.downloads, stub.root, endpoint, workdir))
            for setup in SETUPS
        ]
        asyncio.run(second_sizes(frames, stub.downloads, stub.root, endpoint, workdir, run.report))
    baseline = outcomes[0]
    for outcome in outcomes:
        describe(outcome, None if outcome is baseline else baseline, run.report)
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
