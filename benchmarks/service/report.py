"""The report: the rows of the summary, the failures and the observations, the units the
figures are printed in, and the printing of the summary at the end."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the run failed: exit 1
    notes: list[str] = field(default_factory=list)  # worth a look, but the figures stand

    def add(self, name: str, value: str, note: str = "") -> None:
        self.rows.append((name, value, note))

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"!! {text}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"!  {text}")


def section(title: str) -> None:
    print(f"\n== {title}")


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def print_summary(report: Report) -> None:
    section("Summary")
    width = max(len(r[0]) for r in report.rows)
    value_width = max(len(r[1]) for r in report.rows)
    print(f"{'measure':<{width}}  {'value':<{value_width}}  notes")
    print(f"{'-' * width}  {'-' * value_width}  {'-' * 5}")
    for name, value, note in report.rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {note}")


def print_findings(report: Report) -> None:
    """The observations, then the failures (any failure makes the run exit 1)."""
    if report.notes:
        print("Observations:\n" + "\n".join(f"  - {n}" for n in report.notes))
    if report.problems:
        print("Failures:\n" + "\n".join(f"  - {p}" for p in report.problems))
