"""How well, and at what cost, color frames are aligned before fits2image stacks them.

Generates three 2048x2048 RICE frames of one field, pointed as a real color request would be
(visual 12, -7 px and 0.4 degrees away from red, blue -9, 5 px and -0.3 degrees), then
measures:

* the alignment error: the shift between red and the other frames, by FFT cross-correlation
  at full resolution, before and after `align_to_reference`, and between the channels of the
  resulting color JPEGs. With a rotation the shift varies across the field, so besides the
  whole frame it is measured in each of 4x4 tiles;
* the time of the full color composite, `align_to_reference` plus `fits_to_jpg(color=True)`,
  against `fits_to_jpg(color=True)` on the unaligned frames, the median of 3 runs each.

Run with `.venv/bin/python benchmarks/color_alignment.py`.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np
from fits2image.conversions import fits_to_jpg
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.support` lives at the repository root
    sys.path.insert(0, str(ROOT))

from tests.support.imaging import fits_pixels, measure_shift  # noqa: E402

from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame  # noqa: E402
from thumbservice.adapters.rendering.engine.alignment import align_to_reference  # noqa: E402

SIZE = 2048
REPEATS = 3
RED = FrameSpec("red", SIZE, SIZE, filter="rp", noise_seed=1)
VISUAL = FrameSpec(
    "visual", SIZE, SIZE, filter="V", noise_seed=2, offset=(12, -7), rotation_deg=0.4
)
BLUE = FrameSpec("blue", SIZE, SIZE, filter="B", noise_seed=3, offset=(-9, 5), rotation_deg=-0.3)


TILES = 4


def describe(shift: tuple[float, float]) -> str:
    return f"dx {shift[0]:+8.3f}  dy {shift[1]:+8.3f}  |d| {float(np.hypot(*shift)):7.3f} px"


def error(reference: np.ndarray, image: np.ndarray, whole: bool = True) -> str:
    """The whole-frame shift, and the median and largest |shift| over TILES x TILES tiles."""
    height, width = reference.shape
    rows = np.linspace(0, height, TILES + 1).astype(int)
    cols = np.linspace(0, width, TILES + 1).astype(int)
    tiles = [
        float(np.hypot(*measure_shift(reference[r0:r1, c0:c1], image[r0:r1, c0:c1])))
        for r0, r1 in pairwise(rows)
        for c0, c1 in pairwise(cols)
    ]
    tiled = f"tiles: median |d| {statistics.median(tiles):6.3f}, max |d| {max(tiles):6.3f} px"
    return f"{describe(measure_shift(reference, image))}; {tiled}" if whole else tiled


def median_time(run: Callable[[], object]) -> tuple[float, list[float]]:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="color-alignment-") as tmp:
        directory = Path(tmp)
        start = time.perf_counter()
        red, visual, blue = (write_frame(spec, directory) for spec in (RED, VISUAL, BLUE))
        print(
            f"Generated three {SIZE}x{SIZE} RICE frames in {time.perf_counter() - start:.1f} s "
            f"({red.stat().st_size / 1e6:.1f} MB each)"
        )

        paths, report = align_to_reference(red, [visual, blue], directory / "work")
        if not report.aligned:
            raise SystemExit(f"alignment fell back: {report.reason}")
        print("\nShifts reported from the WCS (other frame's centre on the red grid):")
        for name, shift in zip(("visual", "blue"), report.shifts, strict=True):
            print(f"  {name:<7} {describe(shift)}")

        print("\nAlignment error, red vs other frame, FITS pixels at full resolution:")
        reference = fits_pixels(red)
        for name, original, aligned in (("visual", visual, paths[1]), ("blue", blue, paths[2])):
            print(f"  {name:<7} unaligned {error(reference, fits_pixels(original))}")
            print(f"  {name:<7} aligned   {error(reference, fits_pixels(aligned))}")
        del reference

        options = {"width": SIZE, "height": SIZE, "color": True, "quality": 95}
        aligned_jpg = directory / "aligned.jpg"
        unaligned_jpg = directory / "unaligned.jpg"
        originals = [str(red), str(visual), str(blue)]

        def composite_aligned() -> None:
            out, _ = align_to_reference(red, [visual, blue], directory / "work")
            if not fits_to_jpg([str(path) for path in out], str(aligned_jpg), **options):
                raise SystemExit("fits_to_jpg failed on the aligned frames")

        def composite_unaligned() -> None:
            if not fits_to_jpg(originals, str(unaligned_jpg), **options):
                raise SystemExit("fits_to_jpg failed on the unaligned frames")

        def align_only() -> None:
            align_to_reference(red, [visual, blue], directory / "work")

        composite_unaligned()  # warm up imports and caches before timing
        unaligned_time, unaligned_times = median_time(composite_unaligned)
        aligned_time, aligned_times = median_time(composite_aligned)
        align_time, align_times = median_time(align_only)

        # The JPEG's chroma subsampling mixes every frame into every channel, at zero lag, so
        # over a whole unaligned frame, where the rotation smears the real peak, that one wins.
        print("\nAlignment error, R channel vs G and B channels of the color JPEG (north-up):")
        for label, jpg in (("unaligned", unaligned_jpg), ("aligned", aligned_jpg)):
            rgb = np.asarray(Image.open(jpg).convert("RGB"), dtype=np.float64)
            print(f"  {label:<9} R-G {error(rgb[..., 0], rgb[..., 1], whole=False)}")
            print(f"  {label:<9} R-B {error(rgb[..., 0], rgb[..., 2], whole=False)}")

        def runs(times: list[float]) -> str:
            return ", ".join(f"{t:.2f}" for t in times)

        print(f"\nColor composite time, median of {REPEATS} ({SIZE}x{SIZE} output):")
        print(
            f"  fits_to_jpg, unaligned          {unaligned_time:6.2f} s  ({runs(unaligned_times)})"
        )
        print(f"  align_to_reference + fits_to_jpg {aligned_time:6.2f} s  ({runs(aligned_times)})")
        print(f"  align_to_reference alone        {align_time:6.2f} s  ({runs(align_times)})")
        print(f"  ratio aligned / unaligned       {aligned_time / unaligned_time:6.2f}x")


if __name__ == "__main__":
    main()
