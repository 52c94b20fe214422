"""Display options on the fast renderer: what a stretch, an interval or a colour map costs.

Run from the repository root:

    .venv/bin/python benchmarks/display_benchmark.py            # 7 runs of each
    .venv/bin/python benchmarks/display_benchmark.py --runs 3

A cold 4096x4096 RICE frame (`tests/support/corpus.write_e91`) at 200 px, each render in a
fresh process after the imports and one render of a tiny frame (as `renderer_benchmark.py`
times them), the jobs taking turns, N runs each: the default picture (fits2image's scaling,
the baseline, measured in the same run) and each choice below. Figures: the median wall time
and peak RSS (VmHWM), and the ratio to the default's median. Bar: `stretch=asinh` (with its
default zscale interval) at most 1.2x the default. It exits 1 when the bar is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

BAR = 1.2
BAR_JOB = "stretch=asinh"
JOBS = {
    "default": "",
    "stretch=asinh": "stretch=asinh",
    "stretch=log": "stretch=log",
    "stretch=sqrt": "stretch=sqrt",
    "stretch=linear&interval=minmax": "stretch=linear&interval=minmax",
    "min_cut=350&max_cut=2000 (sinh)": "stretch=sinh&min_cut=350&max_cut=2000",
    "stretch=power&power=0.5": "stretch=power&power=0.5",
    "interval=percentile": "interval=percentile",
    "stretch=histeq": "stretch=histeq",
    "cmap=viridis": "cmap=viridis",
}


def status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str, query: str, warm: str) -> None:
    """One render in this fresh process; prints its figures as JSON."""
    from urllib.parse import parse_qsl

    from thumbservice.adapters.rendering.engine import fast
    from thumbservice.adapters.rendering.engine.labels import FONT_PATH
    from thumbservice.domain.display import DisplayOptions

    display = DisplayOptions.from_mapping(dict(parse_qsl(query)))
    options = {"width": 200, "height": 200, "font_path": FONT_PATH, "display": display}
    fast.render([Path(warm)], **{**options, "width": 32, "height": 32})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        fast.render([Path(path)], **options, workdir=Path(workdir))
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "hwm": status_mib("VmHWM")}))


def run_child(*argv: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-400:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", nargs=3, metavar=("PATH", "QUERY", "WARM"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    from tests.support.corpus import write_e91

    with tempfile.TemporaryDirectory(prefix="display-benchmark-") as tmp:
        directory = Path(tmp)
        big = write_e91(directory, "e91-big", 4096)
        tiny = write_e91(directory / "warm", "warm", 64)
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in JOBS}
        for _ in range(args.runs):
            for name, query in JOBS.items():
                figures[name].append(run_child("--child", str(big), query, str(tiny)))
    wall = {name: statistics.median(r["wall"] for r in rows) for name, rows in figures.items()}
    hwm = {name: statistics.median(r["hwm"] for r in rows) for name, rows in figures.items()}
    print(f"Cold 4096x4096 RICE at 200 px, fast renderer, {args.runs} fresh processes each:\n")
    print("| options | wall (median) | / default | peak RSS (median) | runs (s) |")
    print("|---|---|---|---|---|")
    for name, rows in figures.items():
        runs = ", ".join(f"{r['wall']:.3f}" for r in rows)
        print(
            f"| {name} | {wall[name]:.3f} s | {wall[name] / wall['default']:.2f}x "
            f"| {hwm[name]:.0f} MiB | {runs} |"
        )
    ratio = wall[BAR_JOB] / wall["default"]
    print(f"\n{BAR_JOB}: {ratio:.2f}x the default (bar: at most {BAR}x)")
    return 0 if ratio <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
