"""Reading a Prometheus exposition, as the tests and the benchmark look at /metrics."""

from __future__ import annotations

import re


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of `name` in a Prometheus exposition: the labels and the value of each."""
    found: list[tuple[dict[str, str], float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample == name:
            found.append((dict(re.findall(r'(\w+)="([^"]*)"', label_text)), float(value)))
    return found


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` (with these labels) in a Prometheus exposition."""
    return sum(
        value
        for found, value in samples(text, name)
        if all(found.get(k) == v for k, v in labels.items())
    )
