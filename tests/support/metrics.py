"""Reading a Prometheus exposition, as the tests and the benchmark look at /metrics."""

from __future__ import annotations

import re


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` (with these labels) in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total
