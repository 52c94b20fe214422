"""What /proc says about the service and this process: CPU time, RSS, child processes.

No psutil: /proc/<pid>/status, /proc/<pid>/stat, /proc/<pid>/cmdline and
/proc/<pid>/task/*/children are enough.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Every process below a pid: one reader of /proc, shared with the tests.
from tests.support.service import descendants as descendants

SAMPLE_INTERVAL = 0.050
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status, in KiB (0 if the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def proc_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads), in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def proc_cpu_seconds(pid: int) -> float:
    return sum(proc_times(pid))


def workers_times(pids: list[int]) -> tuple[float, float]:
    times = [proc_times(pid) for pid in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kind_of(pid: int) -> str:
    cmdline = proc_cmdline(pid)
    if "resource_tracker" in cmdline:
        return "resource tracker"
    if "spawn_main" in cmdline:
        return "render worker"
    return "other"


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


@dataclass
class Peaks:
    service: int = 0
    workers: int = 0  # sum over the render workers at one instant
    largest_worker: int = 0
    total: int = 0  # service + every descendant at one instant


class RssSampler:
    """Samples VmRSS of the service and its descendants every SAMPLE_INTERVAL, per phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.phase = "startup"
        self.peaks: dict[str, Peaks] = {}
        self.overall = Peaks()
        self.kinds: dict[int, str] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def workers(self) -> list[int]:
        return [pid for pid in descendants(self.pid) if self.kind(pid) == "render worker"]

    def kind(self, pid: int) -> str:
        if pid not in self.kinds:
            self.kinds[pid] = kind_of(pid)
        return self.kinds[pid]

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            service = proc_status(self.pid, "VmRSS")
            if service == 0:
                continue
            children = {pid: proc_status(pid, "VmRSS") for pid in descendants(self.pid)}
            workers = [rss for pid, rss in children.items() if self.kind(pid) == "render worker"]
            sample = Peaks(
                service=service,
                workers=sum(workers),
                largest_worker=max(workers, default=0),
                total=service + sum(children.values()),
            )
            self.samples += 1
            for peaks in (self.peaks.setdefault(self.phase, Peaks()), self.overall):
                peaks.service = max(peaks.service, sample.service)
                peaks.workers = max(peaks.workers, sample.workers)
                peaks.largest_worker = max(peaks.largest_worker, sample.largest_worker)
                peaks.total = max(peaks.total, sample.total)


class CpuMeter:
    """CPU seconds spent by the service process and by this process over a stretch of time."""

    def __init__(self, service_pid: int) -> None:
        self.service_pid = service_pid
        self.service = proc_cpu_seconds(service_pid)
        self.own = proc_cpu_seconds(os.getpid())
        self.started = time.perf_counter()

    def read(self) -> tuple[float, float, float]:
        """(service CPU s, this process CPU s, wall s) since creation."""
        return (
            proc_cpu_seconds(self.service_pid) - self.service,
            proc_cpu_seconds(os.getpid()) - self.own,
            time.perf_counter() - self.started,
        )
