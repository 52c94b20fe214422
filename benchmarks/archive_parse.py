"""What a large archive answer costs the event loop while it is parsed.

A 1,000-record page is about 2 MB; `ARCHIVE_MAX_ANSWER_BYTES` (8 MiB) bounds what is read.
This parses a page of 10,000 records (7.9 MB, just under the limit) three ways, in one run,
while a ticker on the loop measures the longest the loop went without running (its worst lag):

- on the loop, `json.loads` (the baseline: what the adapter did before);
- in a thread, `json.loads` (C code that holds the GIL throughout);
- in a thread, as the adapter does (`_json_or_none(..., yielding=True)`).

Each is run RUNS times; the median of each figure is printed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from thumbservice.adapters.archive.http import _json_or_none

RUNS = 7
RECORD = {
    "id": 1,
    "basename": "ogg1m001-fa16-20190321-0001-e91",
    "filename": "ogg1m001-fa16-20190321-0001-e91.fits.fz",
    "url": "https://archive-lco-global.s3.amazonaws.com/x.fits.fz?X-Amz-Signature=abc",
    "proposal_id": "LCOEPO2018B-002",
    "request_id": 77,
    "related_frames": [1, 2, 3],
    "padding": "x" * 500,
}
BODY = json.dumps({"count": 10000, "next": None, "results": [RECORD] * 10000}).encode()


async def measure(parse: Callable[[bytes], Any], threaded: bool) -> tuple[float, float]:
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        while running:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - started)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    document = await asyncio.to_thread(parse, BODY) if threaded else parse(BODY)
    took = time.perf_counter() - started
    assert len(document["results"]) == 10000
    await asyncio.sleep(0.02)
    running = False
    await task
    return took, worst


async def main() -> None:
    ways: list[tuple[str, Callable[[bytes], Any], bool]] = [
        ("on the loop, json.loads (baseline)", json.loads, False),
        ("in a thread, json.loads", json.loads, True),
        ("in a thread, the adapter's parse", lambda b: _json_or_none(b, yielding=True), True),
    ]
    print(f"answer: {len(BODY) / 1e6:.1f} MB; {RUNS} runs each, medians")
    baseline_lag = None
    for name, parse, threaded in ways:
        results = [await measure(parse, threaded) for _ in range(RUNS)]
        took = statistics.median(r[0] for r in results)
        lag = statistics.median(r[1] for r in results)
        baseline_lag = baseline_lag or lag
        print(
            f"{name:38} parse {took * 1000:6.1f} ms   worst loop lag {lag * 1000:6.1f} ms"
            f"   ({lag / baseline_lag:.2f}x the baseline's lag)"
        )


if __name__ == "__main__":
    asyncio.run(main())
