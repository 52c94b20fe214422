"""What every service benchmark does around its measurements: the machine's load before and
after, the stack (a scratch directory, the frames generated in it, the archive stand-in serving
them and moto's S3 server), and the summary and exit status at the end."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.archive_server import ArchiveStub

from benchmarks.service.harness import BenchFrame, archive_in_thread, s3_server
from benchmarks.service.proc import load_average
from benchmarks.service.report import Report, print_findings, print_summary

Frames = dict[str, list[BenchFrame]]


@dataclass(frozen=True)
class Stack:
    """The scratch directory, the frames in it, the archive stand-in serving them and the S3
    endpoint."""

    workdir: Path
    frames: Frames
    stub: ArchiveStub
    endpoint: str


class Run:
    """One benchmark run: when it started, its report, and the load average before it (printed
    with the number of CPUs as the run starts)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.report = Report()
        self.load_before = load_average()
        print(f"{os.cpu_count()} CPUs, 1-minute load average {self.load_before} before the run")

    @contextmanager
    def stack(
        self,
        prefix: str,
        make_frames: Callable[[Path], Frames],
        print_generated: Callable[[Frames, float], None],
    ) -> Iterator[Stack]:
        """A scratch directory named with `prefix`, the frames `make_frames` writes to its
        `frames` folder (then `print_generated` with the run's start), the archive stand-in
        serving them and moto's S3 server; all of it is gone afterwards."""
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            workdir = Path(tmp)
            frames = make_frames(workdir / "frames")
            print_generated(frames, self.started)
            with archive_in_thread(workdir / "frames", frames) as stub, s3_server() as endpoint:
                yield Stack(workdir, frames, stub, endpoint)

    def finish(self) -> int:
        """Print the summary, the run time and the findings; the exit status: 1 when the report
        has a problem, else 0."""
        report = self.report
        report.add("1-min load average, start / end", f"{self.load_before} / {load_average()}", "")
        print_summary(report)
        print(f"\nTotal run time {time.perf_counter() - self.started:.0f} s")
        print_findings(report)
        return 1 if report.problems else 0
