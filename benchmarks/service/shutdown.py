"""Shutdown, after `harness.stop_service`: SIGTERM to exit, the service's child processes gone,
TMP_DIR empty, and what the service logged at WARNING or above."""

from __future__ import annotations

from benchmarks.service.harness import Service
from benchmarks.service.report import Report, section


def measure(service: Service, children: list[int], report: Report) -> None:
    section("Shutdown")
    print(
        f"SIGTERM -> exit {service.exit_code} in "
        + (f"{service.stopped_in:.2f} s" if service.stopped_in is not None else "(killed)")
    )
    if service.exit_code != 0:
        report.problem(f"the service exited with {service.exit_code}")
    if service.survivors:
        report.note(f"processes of the service still alive 5 s after it: {service.survivors}")
    else:
        print(f"its {len(children)} child processes were gone too")
    leftovers = sorted(str(p.relative_to(service.scratch)) for p in service.scratch.rglob("*"))
    print(f"TMP_DIR after shutdown: {leftovers or 'empty'}")
    if leftovers:
        report.note(f"TMP_DIR not empty after shutdown: {leftovers}")
    log_lines = service.log_path.read_text(errors="replace").splitlines()
    print(f"service log (LOG_LEVEL=WARNING): {len(log_lines)} lines")
    for line in log_lines[:10]:
        print(f"  {line[:300]}")
    if log_lines:
        report.note(f"the service logged {len(log_lines)} warning/error lines")
    report.add("SIGTERM to exit", f"{service.stopped_in or float('nan'):.2f} s", "")
    report.add("TMP_DIR after the run", "empty" if not leftovers else f"{len(leftovers)} left")
