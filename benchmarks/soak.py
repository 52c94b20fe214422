"""`make soak`: two minutes of mixed traffic, then the dependencies failing under that traffic.

The stack: the archive stand-in (a thread of this process), moto's S3 server (its own process, so
that it can be stopped, killed and started again empty) and the service (`python -m
thumbservice`). Sixteen clients send, in a closed loop, a mix of warm hits (JSON and
`image=true`), cold thumbnails of a 4096x4096 frame at sizes no one asked before, bad parameters
(400) and unknown frames (404):

1. after 20 s of warm-up traffic, two minutes of that, with statuses, latency percentiles and
   RSS printed every 10 s;
2. then, the traffic going on: the store stalled (SIGSTOP) for 10 s; the store killed and started
   again empty; the archive stalled for 10 s; a render worker killed (SIGKILL).

It fails (exit 1) on any 500, on the RSS of the service or of everything growing by more than
10% from one idle point to the next (after warm-up, after the two minutes, after the faults),
on a fault not recovered within 5 s of the dependency returning (a request that needs it
answered 200 again), or on anything left in TMP_DIR. The memory cache is kept small
(MEMORY_CACHE_BYTES=2MiB) so that a growing RSS shows a leak rather than a cache filling up.

Run from the repository root: `.venv/bin/python benchmarks/soak.py` (about 4 minutes).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

from tests.support.archive_server import Fault  # noqa: E402
from tests.support.s3 import create_bucket, free_port  # noqa: E402

from benchmarks.service.harness import (  # noqa: E402
    BUCKET,
    BenchFrame,
    archive_in_thread,
    start_service,
    stop_service,
    wait_ready,
)
from benchmarks.service.proc import descendants, proc_status  # noqa: E402
from benchmarks.service.report import percentile  # noqa: E402
from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame  # noqa: E402

CLIENTS = 16
STEADY_SECONDS = 120.0
REPORT_EVERY = 10.0
STALL_SECONDS = 10.0
RECOVERY_BAR = 5.0
RSS_GROWTH_BAR = 0.10
COLD_SHARE = 0.01  # a few cold 4096x4096 renders a second at 200 px: busy workers, not swamped
WARM_UP_SECONDS = 20.0  # every kind of request served once before the first idle point
WARM_ID, COLD_ID, MISSING_ID = 7001, 7002, 987654321
SERVICE_ENV = {
    "STORE_TIMEOUT": "2",
    "ARCHIVE_TIMEOUT": "2",
    "DOWNLOAD_TIMEOUT": "15",
    "REQUEST_DEADLINE": "20",
    "READINESS_CACHE_SECONDS": "1",
    "MEMORY_CACHE_BYTES": "2MiB",
    "LOG_LEVEL": "WARNING",
}
TIMEOUT = aiohttp.ClientTimeout(total=60)
MOTO = ROOT / ".venv" / "bin" / "moto_server"


# ---------------------------------------------------------------------------------------------
# moto as a process of its own


class MotoProcess:
    """moto's S3 server as a subprocess on a fixed port: it can be stopped, killed, restarted."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "moto_server"),
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("moto did not start")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# ---------------------------------------------------------------------------------------------
# Traffic


@dataclass
class Window:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    by_kind: Counter[tuple[str, int]] = field(default_factory=Counter)


@dataclass
class Traffic:
    base: str
    session: aiohttp.ClientSession
    window: Window = field(default_factory=Window)
    total: Window = field(default_factory=Window)
    running: bool = True
    sizes: itertools.count[int] = field(default_factory=lambda: itertools.count(101))
    five_hundreds: list[str] = field(default_factory=list)
    # (sent, answered, kind, status) of every request, to find the first success after a fault.
    log: list[tuple[float, float, str, int]] = field(default_factory=list)

    def next_size(self) -> int:
        return next(self.sizes)

    def pick(self, rng: random.Random) -> tuple[str, str]:
        roll = rng.random()
        if roll < 0.35:
            return "warm-json", f"/{WARM_ID}/?width=200"
        if roll < 0.70:
            return "warm-image", f"/{WARM_ID}/?width=200&image=true"
        if roll < COLD_SHARE + 0.70:
            # 200 px wide, a height never asked before: a new key, the usual work.
            return "cold", f"/{COLD_ID}/?width=200&height={self.next_size()}"
        if roll < 0.85:
            return "bad", f"/{WARM_ID}/?width=abc"
        return "missing", f"/{MISSING_ID}/"

    async def get(self, kind: str, path: str) -> int:
        started = time.perf_counter()
        begun = time.monotonic()
        try:
            async with self.session.get(self.base + path, timeout=TIMEOUT) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0  # no answer at all: counted, and never a pass
        elapsed = time.perf_counter() - started
        self.log.append((begun, time.monotonic(), kind, status))
        for window in (self.window, self.total):
            window.statuses[status] += 1
            window.latencies.append(elapsed)
            window.by_kind[(kind, status)] += 1
        if status >= 500 and status not in (502, 503, 504):
            self.five_hundreds.append(f"{status} {path}")
        return status

    async def client(self, seed: int) -> None:
        rng = random.Random(seed)
        while self.running:
            await self.get(*self.pick(rng))

    def take_window(self) -> Window:
        window, self.window = self.window, Window()
        return window


def rss_mib(pid: int) -> tuple[float, float]:
    """RSS of the service process, and of it with its children, in MiB."""
    own = proc_status(pid, "VmRSS") / 1024
    children = sum(proc_status(child, "VmRSS") for child in descendants(pid)) / 1024
    return own, own + children


def print_window(label: str, window: Window, pid: int) -> None:
    count = len(window.latencies)
    if not count:
        print(f"{label}: no requests")
        return
    own, total = rss_mib(pid)
    lat = window.latencies
    print(
        f"{label}: {count} req ({count / REPORT_EVERY:.0f}/s) statuses "
        f"{dict(sorted(window.statuses.items()))}; p50 {percentile(lat, 50) * 1000:.0f} ms, "
        f"p95 {percentile(lat, 95) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms; "
        f"RSS service {own:.0f} MiB, with workers {total:.0f} MiB",
        flush=True,
    )


async def run_for(traffic: Traffic, seconds: float, label: str, pid: int) -> None:
    end = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < end:
        await asyncio.sleep(min(REPORT_EVERY, end - time.monotonic()))
        tick += 1
        print_window(f"  {label} {tick * REPORT_EVERY:>4.0f}s", traffic.take_window(), pid)


async def recovered_within(
    traffic: Traffic,
    needs: tuple[str, ...],
    probe: Callable[[], Awaitable[int]],
    since: float | None = None,
    limit: float = 30.0,
) -> float:
    """Seconds from `since` (default now: the dependency is back) until the answer 200 to a
    request that needs it and was sent after that: the traffic's own or a probe's (inf if none
    comes within `limit`)."""
    back = time.monotonic() if since is None else since

    def first_success() -> float | None:
        times = [
            answered for begun, answered, kind, status in traffic.log
            if begun >= back and status == 200 and kind in (*needs, "probe")
        ]  # fmt: skip
        return min(times) - back if times else None

    while time.monotonic() - back < limit:
        await probe()
        found = first_success()
        if found is not None:
            return found
        await asyncio.sleep(0.25)
    return float("inf")


async def idle_rss(pid: int) -> tuple[float, float]:
    await asyncio.sleep(3)
    return rss_mib(pid)


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    recoveries: dict[str, float] = field(default_factory=dict)
    idle_points: list[tuple[str, float, float]] = field(default_factory=list)


async def soak(base: str, pid: int, moto: MotoProcess, stub: object, verdict: Verdict) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        traffic = Traffic(base, session)
        for path in (f"/{WARM_ID}/?width=200", f"/{WARM_ID}/?width=200&image=true"):
            async with session.get(base + path, timeout=TIMEOUT) as response:
                assert response.status == 200, await response.text()
        clients = [asyncio.create_task(traffic.client(seed)) for seed in range(CLIENTS)]
        print(f"\n== {WARM_UP_SECONDS:.0f} s of warm-up traffic", flush=True)
        await run_for(traffic, WARM_UP_SECONDS, "warm-up", pid)
        traffic.running = False
        await asyncio.gather(*clients)
        traffic.take_window()
        verdict.idle_points.append(("after warm-up", *await idle_rss(pid)))

        traffic.running = True
        clients = [asyncio.create_task(traffic.client(seed)) for seed in range(50, 50 + CLIENTS)]
        print(f"\n== {STEADY_SECONDS:.0f} s of {CLIENTS} clients, mixed", flush=True)
        await run_for(traffic, STEADY_SECONDS, "steady", pid)
        traffic.running = False
        await asyncio.gather(*clients)
        traffic.take_window()
        verdict.idle_points.append(("after the steady traffic", *await idle_rss(pid)))

        traffic.running = True
        clients = [asyncio.create_task(traffic.client(seed)) for seed in range(100, 100 + CLIENTS)]

        async def cold_probe() -> int:
            return await traffic.get("probe", f"/{WARM_ID}/?width=199&height={traffic.next_size()}")

        async def warm_probe() -> int:
            return await traffic.get("probe", f"/{WARM_ID}/?width=200")

        print("\n== the store stalled (SIGSTOP) under traffic", flush=True)
        moto.signal(signal.SIGSTOP)
        await run_for(traffic, STALL_SECONDS, "store stalled", pid)
        moto.signal(signal.SIGCONT)
        verdict.recoveries["store stalled"] = await recovered_within(traffic, ("cold",), cold_probe)

        print("\n== the store killed, then started again empty", flush=True)
        moto.kill()
        await run_for(traffic, REPORT_EVERY / 2, "store dead", pid)
        await asyncio.to_thread(moto.start)
        verdict.recoveries["store back empty"] = await recovered_within(
            traffic, ("cold",), cold_probe
        )

        print("\n== the archive stalled", flush=True)
        # Lookups hang past the service's ARCHIVE_TIMEOUT, and end once the stall is over.
        stub.fault = Fault(delay=STALL_SECONDS + 5)  # type: ignore[attr-defined]
        await run_for(traffic, STALL_SECONDS, "archive stalled", pid)
        stub.fault = None  # type: ignore[attr-defined]
        verdict.recoveries["archive stalled"] = await recovered_within(
            traffic, ("warm-json", "warm-image"), warm_probe
        )

        print("\n== a render worker killed while renders run", flush=True)
        busy = [asyncio.ensure_future(cold_probe()) for _ in range(4)]  # work for the workers
        await asyncio.sleep(0.5)
        workers = [p for p in descendants(pid) if "spawn_main" in _cmdline(p)]
        if workers:
            os.kill(workers[0], signal.SIGKILL)
        killed = time.monotonic()  # the pool replaces its workers at once: back from now
        await run_for(traffic, REPORT_EVERY / 2, "worker killed", pid)
        verdict.recoveries["worker killed"] = await recovered_within(
            traffic, ("cold",), cold_probe, since=killed
        )
        await asyncio.gather(*busy)

        traffic.running = False
        await asyncio.gather(*clients)
        await asyncio.sleep(2)  # stragglers of the probes
        verdict.idle_points.append(("after the faults", *await idle_rss(pid)))

        print("\n== totals", flush=True)
        total = traffic.total
        print(f"statuses {dict(sorted(total.statuses.items()))}")
        kinds = sorted({kind for kind, _ in total.by_kind})
        for kind in kinds:
            counts = {s: n for (k, s), n in total.by_kind.items() if k == kind}
            print(f"  {kind:11} {dict(sorted(counts.items()))}")
        lat = total.latencies
        print(
            f"latency p50 {percentile(lat, 50) * 1000:.0f} ms, p95 "
            f"{percentile(lat, 95) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms"
        )
        if traffic.five_hundreds:
            verdict.problems.append(f"500-class answers: {traffic.five_hundreds[:5]}")
        if total.statuses[0]:
            verdict.problems.append(f"{total.statuses[0]} requests got no answer at all")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def judge(verdict: Verdict, scratch: Path) -> None:
    print("\n== idle points (RSS, MiB: service / with workers)")
    for label, own, total in verdict.idle_points:
        print(f"  {label:28} {own:7.0f} {total:9.0f}")
    for (la, own_a, all_a), (lb, own_b, all_b) in itertools.pairwise(verdict.idle_points):
        for what, before, after in (("service", own_a, own_b), ("service + workers", all_a, all_b)):
            if after > before * (1 + RSS_GROWTH_BAR):
                verdict.problems.append(
                    f"RSS of {what} grew {after / before - 1:.0%} from '{la}' to '{lb}'"
                )
    print("\n== recovery after the dependency returned (bar: 5 s)")
    for fault, seconds in verdict.recoveries.items():
        print(f"  {fault:20} {seconds:6.2f} s")
        if seconds > RECOVERY_BAR:
            verdict.problems.append(f"{fault}: recovered in {seconds:.1f} s")
    left = sorted(p.name for p in scratch.iterdir()) if scratch.is_dir() else []
    print(f"\nTMP_DIR after shutdown: {left or 'empty'}")
    if left:
        verdict.problems.append(f"left in TMP_DIR: {left}")


def main() -> int:
    started = time.perf_counter()
    verdict = Verdict()
    with tempfile.TemporaryDirectory(prefix="thumbservice-soak-") as tmp:
        workdir = Path(tmp)
        frames_dir = workdir / "frames"
        warm = FrameSpec("ogg1m001-fa16-20261127-0001-e91", width=2048, height=2048)
        cold = FrameSpec("ogg1m001-fa16-20261127-0002-e91", width=4096, height=4096, field_seed=9)
        frames = {
            "soak": [
                BenchFrame(WARM_ID, warm, write_frame(warm, frames_dir)),
                BenchFrame(COLD_ID, cold, write_frame(cold, frames_dir)),
            ]
        }
        moto = MotoProcess(free_port(), workdir / "moto.log")
        moto.start()
        try:
            asyncio.run(create_bucket(moto.endpoint, BUCKET))
            with archive_in_thread(frames_dir, frames) as stub:
                service = start_service(stub.root, moto.endpoint, workdir, SERVICE_ENV)
                children: list[int] = []
                try:

                    async def run() -> None:
                        async with aiohttp.ClientSession() as session:
                            await wait_ready(session, service)
                        children.extend(descendants(service.process.pid))
                        await soak(service.base, service.process.pid, moto, stub, verdict)
                        children.extend(descendants(service.process.pid))

                    asyncio.run(run())
                finally:
                    stop_service(service, children)
                if service.exit_code != 0:
                    verdict.problems.append(f"the service exited with {service.exit_code}")
                judge(verdict, service.scratch)
        finally:
            moto.stop()
        shutil.rmtree(frames_dir, ignore_errors=True)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")
    if verdict.problems:
        print("\nFAILED:")
        for problem in verdict.problems:
            print(f"- {problem}")
        return 1
    print("\nPASSED: no 500, RSS steady between idle points, every fault recovered within 5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
