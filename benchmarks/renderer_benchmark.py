"""The fast renderer against fits2image: the same picture, in how much time and memory.

Run from the repository root:

    .venv/bin/python benchmarks/renderer_benchmark.py                  # everything
    .venv/bin/python benchmarks/renderer_benchmark.py --compare-only   # SSIM and contact sheet
    .venv/bin/python benchmarks/renderer_benchmark.py --memory-limit   # + RENDER_MEMORY_LIMIT

Parts, all in one run, fits2image (`rendering.fits2image_renderer`) as the baseline:

1. **SSIM** of the fast renderer's image against fits2image's, on the corpus of
   `tests/support/corpus.py` (4096x4096 and 2048x2048 reduced RICE frames, a raw frame, a
   spectrum, a frame turned a quarter by its WCS, a Sinistro file, plain int16 and float32, a
   label, median/percentile, color) at 100, 200, 500, 1000 px and full size. Bars: at least
   0.97 on every case, 0.99 on average. A contact sheet (HTML and PNG) goes to
   benchmarks/results/.
2. **Time** of a cold 4096x4096 RICE frame at 200 px: each render in a fresh process, after
   the imports and one render of a tiny frame, alternating the renderers, N runs each; the
   median and the ratio. Bar: at most 0.5x.
3. **Peak RSS** (VmHWM) of those processes, and of a process that only imported the
   renderers. Bar: the fast renderer at most 0.3x fits2image.
4. **Color** from three 2048x2048 frames at 600 px: the fast renderer against today's path,
   `align_to_reference` and fits2image's color mode, fresh processes as in 2. Bar: at most
   0.5x.
5. With `--memory-limit`, the smallest `RLIMIT_DATA` at which each renderer still renders a
   8192x8192 frame (the largest the service accepts), by bisection in fresh processes.

It exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import html
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from thumbservice.adapters.rendering.engine.labels import FONT_PATH  # noqa: E402

FONT = FONT_PATH
RESULTS = ROOT / "benchmarks" / "results"
SIZES = (100, 200, 500, 1000, 0)  # 0: full size
TIME_RUNS = 7
COLOR_RUNS = 5
SSIM_EVERY, SSIM_MEAN = 0.97, 0.99
TIME_BAR, RSS_BAR, COLOR_BAR = 0.5, 0.3, 0.5


def status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    """One render in this fresh process; prints its figures as JSON."""
    from thumbservice.adapters.rendering import fits2image_renderer
    from thumbservice.adapters.rendering.engine import fast

    module = fast if args.renderer == "fast" else fits2image_renderer
    if args.limit:
        from thumbservice.adapters.rendering.engine.memory import apply_memory_limit

        apply_memory_limit(args.limit)
    paths = [Path(p) for p in args.paths]
    options = {"width": args.size, "height": args.size, "font_path": FONT, "color": args.color}
    if args.warm:
        warm = [Path(args.warm)] * (3 if args.color else 1)
        module.render(warm, **{**options, "width": 32, "height": 32})
    idle = status_mib("VmHWM")
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    outcome = "ok"
    with tempfile.TemporaryDirectory() as workdir:
        try:
            module.render(paths, **options, workdir=Path(workdir))
        except Exception as err:
            outcome = type(err).__name__
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "outcome": outcome,
                "wall": wall,
                "user": after.ru_utime - before.ru_utime,
                "sys": after.ru_stime - before.ru_stime,
                "hwm": status_mib("VmHWM"),
                "idle_hwm": idle,
            }
        )
    )


def idle_child() -> None:
    """A process that only imports what a render worker imports."""
    import fits2image.conversions  # noqa: F401

    from thumbservice.adapters.rendering import fits2image_renderer  # noqa: F401
    from thumbservice.adapters.rendering.engine import fast  # noqa: F401

    print(json.dumps({"hwm": status_mib("VmHWM")}))


def run_child(*argv: str) -> dict[str, float | str]:
    done = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if done.returncode != 0:
        return {"outcome": f"exit {done.returncode}: {done.stderr.strip()[-200:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Comparison:
    case: str
    size: int
    ssim: float
    shape: tuple[int, int]
    sheet: dict[str, str]


def compare(directory: Path, sheet_dir: Path) -> list[Comparison]:
    from skimage.metrics import structural_similarity
    from tests.support.corpus import build_corpus

    from thumbservice.adapters.rendering import fits2image_renderer
    from thumbservice.adapters.rendering.engine import fast

    start = time.perf_counter()
    cases = build_corpus(directory / "corpus")
    print(f"Corpus of {len(cases)} cases written in {time.perf_counter() - start:.1f} s")
    results = []
    for index, case in enumerate(cases):
        for size in SIZES:
            side = size or 100_000
            options = {"width": side, "height": side, "font_path": FONT, **case.options}
            ours = fast.render(case.paths, **options).image  # type: ignore[arg-type]
            reference = fits2image_renderer.render(case.paths, **options).image  # type: ignore[arg-type]
            if ours.size != reference.size:
                score = 0.0
            else:
                score = float(
                    structural_similarity(
                        np.asarray(ours), np.asarray(reference), channel_axis=2, data_range=255
                    )
                )
            sheet = {}
            if size in (200, 1000):
                for name, image in (("fits2image", reference), ("fast", ours)):
                    file = f"{index:02d}-{size}-{name}.png"
                    image.save(sheet_dir / file)
                    sheet[name] = file
            results.append(Comparison(case.name, size, score, ours.size, sheet))
        row = [r for r in results if r.case == case.name]
        print(f"  {case.name:<20} " + "  ".join(f"{r.size or 'full'}: {r.ssim:.5f}" for r in row))
    return results


def write_sheet(results: list[Comparison], sheet_dir: Path) -> None:
    """An HTML page and a PNG with both renderers' thumbnails side by side, and the SSIMs."""
    cases = list(dict.fromkeys(r.case for r in results))
    rows = []
    for case in cases:
        mine = [r for r in results if r.case == case]
        scores = ", ".join(f"{r.size or 'full'} px: {r.ssim:.4f}" for r in mine)
        images = "".join(
            f'<td><img src="{html.escape(r.sheet[name])}" title="{name} {r.size} px"><br>'
            f"{name}, {r.size} px</td>"
            for r in mine
            if r.sheet
            for name in ("fits2image", "fast")
        )
        rows.append(f"<tr><th>{html.escape(case)}<br><small>{scores}</small></th>{images}</tr>")
    page = (
        "<!doctype html><meta charset=utf-8><title>fits2image and the fast renderer</title>"
        "<style>body{font-family:sans-serif;background:#222;color:#ddd}td,th{padding:6px;"
        "vertical-align:top;text-align:center}th{text-align:left;width:16em}img{max-width:"
        "420px}</style><h1>fits2image (reference) and the fast renderer</h1>"
        "<p>SSIM of the fast renderer's image against fits2image's at each size.</p>"
        f"<table>{''.join(rows)}</table>"
    )
    (sheet_dir / "index.html").write_text(page)
    # The PNG: the 200 px pair of every case, labelled.
    font = ImageFont.truetype(str(FONT), 13)
    cell, label_height = 210, 34
    sheet = Image.new("RGB", (2 * cell, len(cases) * (cell + label_height)), (34, 34, 34))
    draw = ImageDraw.Draw(sheet)
    for row, case in enumerate(cases):
        entry = next(r for r in results if r.case == case and r.size == 200)
        top = row * (cell + label_height)
        draw.text((4, top + 2), f"{case}  SSIM {entry.ssim:.4f}", font=font, fill=(230, 230, 230))
        draw.text((4, top + 17), "fits2image | fast", font=font, fill=(150, 150, 150))
        for column, name in enumerate(("fits2image", "fast")):
            with Image.open(sheet_dir / entry.sheet[name]) as image:
                sheet.paste(image, (column * cell, top + label_height))
    sheet.save(sheet_dir.parent / "contact-sheet.png")


def timed(runs: int, jobs: dict[str, list[str]]) -> dict[str, list[dict[str, float | str]]]:
    """Each job `runs` times in fresh processes, the jobs taking turns."""
    figures: dict[str, list[dict[str, float | str]]] = {name: [] for name in jobs}
    for _ in range(runs):
        for name, argv in jobs.items():
            figures[name].append(run_child(*argv))
    return figures


def median_of(rows: list[dict[str, float | str]], key: str) -> float:
    return statistics.median(float(row[key]) for row in rows)


def memory_limits(directory: Path, warm: Path) -> dict[str, int | None]:
    """The smallest RLIMIT_DATA (MiB) at which each renderer renders an 8192x8192 frame."""
    from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame

    start = time.perf_counter()
    huge = write_frame(FrameSpec("huge-e91", 8192, 8192, stars=200), directory)
    print(f"\n8192x8192 frame written in {time.perf_counter() - start:.1f} s")
    found: dict[str, int | None] = {}
    for renderer, low, high in (("fast", 160, 1024), ("fits2image", 512, 4096)):

        def works(mib: int, renderer: str = renderer) -> bool:
            outcome = run_child(
                "--child", renderer, str(huge), "--size", "200", "--warm", str(warm),
                "--limit", str(mib * 1024 * 1024),
            )  # fmt: skip
            print(f"  {renderer:<10} limit {mib:5d} MiB: {outcome['outcome']}")
            return outcome["outcome"] == "ok"

        if not works(high):
            found[renderer] = None
            continue
        while high - low > 16:
            middle = (low + high) // 2
            if works(middle):
                high = middle
            else:
                low = middle
        found[renderer] = high
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare-only", action="store_true")
    parser.add_argument("--memory-limit", action="store_true")
    parser.add_argument("--child", dest="renderer")
    parser.add_argument("--idle-child", action="store_true")
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--color", action="store_true")
    parser.add_argument("--warm")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    if args.renderer:
        child(args)
        return 0
    if args.idle_child:
        idle_child()
        return 0

    import logging

    logging.basicConfig(level=logging.ERROR)
    import warnings

    warnings.simplefilter("ignore")
    failures: list[str] = []
    started = time.perf_counter()
    sheet_dir = RESULTS / "sheet"
    shutil.rmtree(sheet_dir, ignore_errors=True)
    sheet_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="renderer-benchmark-") as tmp:
        directory = Path(tmp)
        results = compare(directory, sheet_dir)
        write_sheet(results, sheet_dir)
        scores = [r.ssim for r in results]
        worst = min(results, key=lambda r: r.ssim)
        print(
            f"\nSSIM over {len(scores)} renders: min {worst.ssim:.5f} ({worst.case}, "
            f"{worst.size or 'full'} px), mean {statistics.mean(scores):.5f}"
        )
        print(f"Contact sheet: {sheet_dir / 'index.html'} and {RESULTS / 'contact-sheet.png'}")
        if worst.ssim < SSIM_EVERY:
            failures.append(f"SSIM {worst.ssim:.4f} < {SSIM_EVERY} on {worst.case}")
        if statistics.mean(scores) < SSIM_MEAN:
            failures.append(f"mean SSIM {statistics.mean(scores):.4f} < {SSIM_MEAN}")
        table = ["| case | " + " | ".join(f"{s} px" if s else "full size" for s in SIZES) + " |"]
        table.append("|---" * (len(SIZES) + 1) + "|")
        for case in dict.fromkeys(r.case for r in results):
            row = [r for r in results if r.case == case]
            table.append(f"| {case} | " + " | ".join(f"{r.ssim:.5f}" for r in row) + " |")
        summary = ["\n".join(table)]

        if not args.compare_only:
            corpus = directory / "corpus"
            big = corpus / "e91-big.fits.fz"
            warm = directory / "warm"
            from tests.support.corpus import write_color, write_e91

            tiny = write_e91(warm, "warm", 64)
            idle = [run_child("--idle-child")["hwm"] for _ in range(3)]
            jobs = {
                name: ["--child", name, str(big), "--size", "200", "--warm", str(tiny)]
                for name in ("fits2image", "fast")
            }
            print(f"\nCold 4096x4096 RICE at 200 px, {TIME_RUNS} fresh processes each:")
            runs = timed(TIME_RUNS, jobs)
            for name, rows in runs.items():
                print(f"  {name:<10} " + ", ".join(f"{float(r['wall']):.3f}" for r in rows) + " s")
            bad = [r["outcome"] for rows in runs.values() for r in rows if r["outcome"] != "ok"]
            if bad:
                failures.append(f"renders failed: {bad}")
            wall = {name: median_of(rows, "wall") for name, rows in runs.items()}
            user = {name: median_of(rows, "user") for name, rows in runs.items()}
            system = {name: median_of(rows, "sys") for name, rows in runs.items()}
            hwm = {name: median_of(rows, "hwm") for name, rows in runs.items()}
            time_ratio = wall["fast"] / wall["fits2image"]
            rss_ratio = hwm["fast"] / hwm["fits2image"]

            color_dir = directory / "color"
            paths = [str(p) for p in write_color(color_dir, "field", 2048)]
            color_jobs = {
                name: ["--child", name, *paths, "--size", "600", "--color", "--warm", str(tiny)]
                for name in ("fits2image", "fast")
            }
            print(f"Color, three 2048x2048 frames at 600 px, {COLOR_RUNS} fresh processes each:")
            color_runs = timed(COLOR_RUNS, color_jobs)
            for name, rows in color_runs.items():
                print(f"  {name:<10} " + ", ".join(f"{float(r['wall']):.3f}" for r in rows) + " s")
            color = {name: median_of(rows, "wall") for name, rows in color_runs.items()}
            color_ratio = color["fast"] / color["fits2image"]

            lines = [
                "| measure | fits2image | fast | fast / fits2image | bar |",
                "|---|---|---|---|---|",
                f"| cold 4096² RICE @200 px, wall (median of {TIME_RUNS}) | "
                f"{wall['fits2image']:.3f} s | {wall['fast']:.3f} s | {time_ratio:.2f}x | ≤ 0.5x |",
                f"| same, user CPU (median) | {user['fits2image']:.3f} s | {user['fast']:.3f} s | "
                f"{user['fast'] / user['fits2image']:.2f}x | |",
                f"| same, system CPU (median) | {system['fits2image']:.3f} s | "
                f"{system['fast']:.3f} s | {system['fast'] / system['fits2image']:.2f}x | |",
                f"| peak RSS of the render process (VmHWM, median) | {hwm['fits2image']:.0f} MiB "
                f"| {hwm['fast']:.0f} MiB | {rss_ratio:.2f}x | ≤ 0.3x |",
                f"| RSS of a process that only imported the renderers | "
                f"{statistics.median(idle):.0f} MiB | | | |",
                f"| color, 3 x 2048² @600 px, wall (median of {COLOR_RUNS}) | "
                f"{color['fits2image']:.3f} s | {color['fast']:.3f} s | {color_ratio:.2f}x "
                "| ≤ 0.5x |",
            ]
            summary.append("\n".join(lines))
            if time_ratio > TIME_BAR:
                failures.append(f"time ratio {time_ratio:.2f}x > {TIME_BAR}x")
            if rss_ratio > RSS_BAR:
                failures.append(f"peak RSS ratio {rss_ratio:.2f}x > {RSS_BAR}x")
            if color_ratio > COLOR_BAR:
                failures.append(f"color time ratio {color_ratio:.2f}x > {COLOR_BAR}x")
            if args.memory_limit:
                limits = memory_limits(directory, tiny)
                summary.append(
                    "| smallest RLIMIT_DATA that renders 8192² RICE @200 px | fits2image | fast |\n"
                    "|---|---|---|\n"
                    "| bisection to 16 MiB, fresh processes | "
                    + " | ".join(
                        f"{limits[name]} MiB" if limits[name] else "over the range tried"
                        for name in ("fits2image", "fast")
                    )
                    + " |"
                )
    print("\n" + "\n\n".join(summary))
    print(f"\nWhole run: {time.perf_counter() - started:.0f} s")
    if failures:
        print("\nBARS MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("\nAll bars met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
