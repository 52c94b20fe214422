"""The stack the benchmark measures: generated frames, the archive stand-in in a thread with its
own event loop, moto's S3 server, and the service as a subprocess (start, readiness, workers
settling, stop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from tests.support.archive_server import ArchiveStub
from tests.support.s3 import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    create_bucket,
    free_port,
    moto_server,
)

from benchmarks.service.proc import RssSampler, proc_cmdline, proc_cpu_seconds
from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_record, write_frame

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "thumbservice-bench"
WORKERS = 2
LARGE, SMALL = 4096, 2048
READY_TIMEOUT = 60.0
SETTLE_TIMEOUT = 30.0
STOP_TIMEOUT = 45.0


# ---------------------------------------------------------------------------------------------
# Frames


@dataclass(frozen=True)
class BenchFrame:
    frame_id: int
    spec: FrameSpec
    path: Path


def generate_frames(directory: Path) -> dict[str, list[BenchFrame]]:
    """Distinct frames (own basename, id, star field and noise) for each measurement."""
    plan: dict[str, tuple[int, int]] = {  # group -> (size, count)
        "cold": (LARGE, 3),
        "single_flight": (LARGE, 1),
        "health": (LARGE, 4),
        "warmup": (SMALL, 2),
        "cold_small": (SMALL, 3),
    }
    specs: dict[str, list[tuple[int, FrameSpec]]] = {}
    serial = 0
    for group, (size, count) in plan.items():
        for _ in range(count):
            serial += 1
            frame_id = (9000 if size == LARGE else 8000) + serial
            spec = FrameSpec(
                f"ogg1m001-fa16-20261126-{serial:04d}-e91",
                width=size,
                height=size,
                field_seed=100 + serial,
                noise_seed=200 + serial,
                request_id=3000000 + serial,
            )
            specs.setdefault(group, []).append((frame_id, spec))
    planned = [
        (group, frame_id, spec) for group, items in specs.items() for frame_id, spec in items
    ]
    paths = write_frames([spec for _, _, spec in planned], directory)
    frames: dict[str, list[BenchFrame]] = {}
    for (group, frame_id, spec), path in zip(planned, paths, strict=True):
        frames.setdefault(group, []).append(BenchFrame(frame_id, spec, path))
    return frames


def write_frames(specs: Sequence[FrameSpec], directory: Path) -> list[Path]:
    """Write the frames into `directory` in two processes; their paths, in the order of `specs`.
    The processes are forked, so this must run before any thread of this process exists; two
    of them halve the wait on 2 cores."""
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        return list(pool.map(write_frame, specs, [directory] * len(specs)))


def print_generated(frames: dict[str, list[BenchFrame]], started: float) -> None:
    """How many frames of each size, the time since `started`, and the size of a file."""
    counts = Counter(f"{f.spec.width}²" for group in frames.values() for f in group)
    large = frames["cold"][0].path.stat().st_size / 1e6
    small = frames["cold_small"][0].path.stat().st_size / 1e6
    print(
        f"Generated {dict(counts)} RICE frames in {time.perf_counter() - started:.1f} s "
        f"({large:.1f} MB per {LARGE}², {small:.1f} MB per {SMALL}²)"
    )


# ---------------------------------------------------------------------------------------------
# The archive stand-in, in a thread with its own event loop, and moto's S3 server


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="archive-stub", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_the_rest() -> None:
            # Handlers still waiting (an injected stall) end here, not as "destroyed" tasks.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(cancel_the_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


@contextmanager
def archive_in_thread(
    directory: Path, frames: dict[str, list[BenchFrame]]
) -> Iterator[ArchiveStub]:
    """The archive stand-in serving every frame, on its own event loop in a thread."""
    stub = ArchiveStub(directory)
    stub_loop = LoopThread()
    stub_loop.start()
    try:
        stub_loop.call(stub.start())
        for group in frames.values():
            for frame in group:
                stub.add_frame(frame_record(frame.spec, frame.frame_id, ""), frame.path)
        yield stub
    finally:
        stub_loop.call(stub.stop())
        stub_loop.stop()


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server, in threads of this process, with BUCKET created; yields its endpoint."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    with moto_server() as endpoint:
        asyncio.run(create_bucket(endpoint, BUCKET))
        yield endpoint


# ---------------------------------------------------------------------------------------------
# The service process


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base: str
    scratch: Path
    log_path: Path
    stopped_in: float | None = None
    exit_code: int | None = None
    survivors: list[str] = field(default_factory=list)


def start_service(
    archive_root: str,
    s3_endpoint: str,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    name: str = "service",
) -> Service:
    port = free_port()
    scratch = workdir / f"{name}-scratch" if name != "service" else workdir / "scratch"
    scratch.mkdir()
    python = ROOT / ".venv" / "bin" / "python"
    env = dict(os.environ)
    env.update(
        ARCHIVE_API_URL=archive_root,
        ARCHIVE_SOURCE="http",
        THUMBNAIL_STORE="s3",
        AWS_BUCKET=BUCKET,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        STORAGE_URL=s3_endpoint,
        HOST="127.0.0.1",
        PORT=str(port),
        TMP_DIR=str(scratch),
        RENDER_WORKERS=str(WORKERS),
        LOG_LEVEL="WARNING",
    )
    env.update(extra_env or {})
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python if python.exists() else sys.executable), "-m", "thumbservice"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Service(process, f"http://127.0.0.1:{port}", scratch, log_path)


def stop_service(service: Service, known_children: list[int]) -> None:
    """SIGTERM and wait (bounded); SIGKILL it and any worker it left if it will not stop."""
    process = service.process
    if process.poll() is None:
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
            service.stopped_in = time.perf_counter() - started
        except subprocess.TimeoutExpired:
            print(f"!! the service did not stop within {STOP_TIMEOUT:.0f} s: killing it")
            process.kill()
            process.wait(timeout=10)
    service.exit_code = process.returncode
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline and any(proc_cmdline(p) for p in known_children):
        time.sleep(0.1)
    for pid in known_children:  # only processes this service started, by id
        cmdline = proc_cmdline(pid)
        if cmdline:
            service.survivors.append(cmdline.strip())
            if "spawn_main" in cmdline or "resource_tracker" in cmdline:
                os.kill(pid, signal.SIGKILL)


async def wait_ready(session: aiohttp.ClientSession, service: Service) -> float:
    started = time.perf_counter()
    last = "no answer"
    while time.perf_counter() - started < READY_TIMEOUT:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"the service exited with {service.process.returncode}:\n"
                + service.log_path.read_text(errors="replace")[-3000:]
            )
        try:
            async with session.get(
                service.base + "/readyz", timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                if response.status == 200:
                    return time.perf_counter() - started
                last = f"{response.status} {await response.text()}"
        except (aiohttp.ClientError, TimeoutError) as err:
            last = repr(err)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"/readyz did not answer 200 within {READY_TIMEOUT:.0f} s: {last}")


async def wait_workers_settled(sampler: RssSampler) -> float:
    """Until both workers exist and their CPU time has stopped moving (imports done)."""
    started = time.perf_counter()
    last: float | None = None
    still = 0
    while time.perf_counter() - started < SETTLE_TIMEOUT:
        workers = sampler.workers()
        cpu = sum(proc_cpu_seconds(pid) for pid in workers)
        if len(workers) >= WORKERS and cpu == last:
            still += 1
            if still >= 5:
                return time.perf_counter() - started
        else:
            still = 0
        last = cpu
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# What every measurement works with


@dataclass
class Bench:
    """The running stack, the RSS sampler watching the service, and the clients' session."""

    service: Service
    stub: ArchiveStub
    frames: dict[str, list[BenchFrame]]
    workdir: Path
    sampler: RssSampler
    session: aiohttp.ClientSession
    s3_endpoint: str

    @property
    def base(self) -> str:
        return self.service.base
