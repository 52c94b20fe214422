"""Which storage layouts the fast renderer reads by its own tile reader, which by astropy's.

Run from the repository root:

    .venv/bin/python benchmarks/layout_coverage.py            # 1024x1024 frames, 3 runs
    .venv/bin/python benchmarks/layout_coverage.py --side 2048 --runs 5

Every layout of `tests/support/corpus.build_layouts` (each tile compression, data type,
scaling, blank, HDU position, extra axes, strips) is written with astropy at `--side` pixels
a side (the strips keep their sizes), then, in this one process:

* **the path** that gave the rows: `tiles` (`tiles.TileReader`, astropy's C codec without its
  per-tile Python), `astropy` (astropy's own reader of compressed tiles), `plain` (astropy's
  reader of an uncompressed image) or `full read` (astropy's full read, where a section of
  the image could not be read);
* **the picture**: SSIM of the fast renderer's 200 px thumbnail against fits2image's (through
  the fits2image adapter; for a frame of under 2,000 pixels that adapter draws with the fast
  renderer, and for blank pixels fits2image fails: both are said);
* **the time** of each at 200 px: the renderers alternate, after one untimed render of each,
  and the median of `--runs` is given with the ratio fast/fits2image.

Nothing reaches the network; the frames go to a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402
from tests.support import corpus  # noqa: E402

from thumbservice.adapters.rendering import fits2image_renderer  # noqa: E402
from thumbservice.adapters.rendering.engine import fast, layout  # noqa: E402
from thumbservice.adapters.rendering.engine.framefile import FrameFile  # noqa: E402
from thumbservice.adapters.rendering.engine.labels import FONT_PATH  # noqa: E402
from thumbservice.domain.errors import UnreadableFrame  # noqa: E402

SIZE = 200


def _render(module: object, path: Path) -> np.ndarray:
    image = module.render(  # type: ignore[attr-defined]
        [path], width=SIZE, height=SIZE, font_path=FONT_PATH
    ).image
    return np.asarray(image)


def _timed(module: object, path: Path) -> float:
    start = time.perf_counter()
    _render(module, path)
    return time.perf_counter() - start


def _reader(path: Path) -> str:
    with FrameFile(path) as frame:
        frame.rows(0, min(frame.height, frame.tile_rows))
        return frame.reader


def _similarity(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"sizes differ {a.shape} {b.shape}"
    if min(a.shape[:2]) < 7:
        return "identical" if np.array_equal(a, b) else "differ"
    value = structural_similarity(a, b, channel_axis=2, data_range=255)
    return f"{value:.4f}" + (" (identical)" if np.array_equal(a, b) else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="layouts-") as scratch:
        layouts = corpus.build_layouts(Path(scratch), (args.side, args.side))
        print(
            f"{len(layouts)} layouts, {args.side}x{args.side} (strips as named), {SIZE} px, "
            f"median of {args.runs} runs each, renderers alternating\n"
        )
        header = f"{'layout':36} {'path':9} {'fast ms':>8} {'f2i ms':>8} {'ratio':>6}  picture"
        print(header)
        print("-" * len(header))
        counts: dict[str, int] = {}
        for entry in layouts:
            reader = _reader(entry.path)
            counts[reader] = counts.get(reader, 0) + 1
            ours = _render(fast, entry.path)
            height, width = layout.image_shape(entry.path)
            small = height * width < fits2image_renderer.FEWEST_PIXELS
            try:
                reference = _render(fits2image_renderer, entry.path)
            except UnreadableFrame:
                reference = None
            fast_times, reference_times = [], []
            for _ in range(args.runs):
                fast_times.append(_timed(fast, entry.path))
                if reference is not None:
                    reference_times.append(_timed(fits2image_renderer, entry.path))
            fast_ms = 1e3 * statistics.median(fast_times)
            if reference is None:
                picture = "fits2image fails (blank pixels); fast alone"
                ref_ms = ratio = "-"
            else:
                picture = _similarity(ours, reference)
                if small:
                    picture += ", drawn by the fast renderer (under 2,000 pixels)"
                reference_ms = 1e3 * statistics.median(reference_times)
                ref_ms, ratio = f"{reference_ms:.1f}", f"{fast_ms / reference_ms:.2f}"
                if not picture.startswith(("identical", "1.0", "0.99")):
                    failures += 1
            print(f"{entry.name:36} {reader:9} {fast_ms:8.1f} {ref_ms:>8} {ratio:>6}  {picture}")
        print()
        print("paths: " + ", ".join(f"{name} {count}" for name, count in sorted(counts.items())))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
