"""The fast renderer: fits2image 1.1.0's picture, by its algorithm, in bands of rows.

fits2image reads a whole frame, scales all of it in float64, turns it north-up and lets Pillow
shrink it. For a 4096x4096 frame that is about 580 MiB at the peak, and most of its time goes
to arithmetic on full-size float64 copies. This renderer computes the same picture:

1. **The image and its header** as fits2image picks them (`framefile`): the first non-empty
   2-D HDU, Sinistro's first quadrant included, with the primary header merged in.
2. **The zscale limits** from the same ~2000 samples of the unoriented frame (`zscale`).
3. **The 8-bit values**, `linear_scale` and the gamma table, band by band in float32, and
   `recalculate_median` as a table built from the histogram of the whole 8-bit frame.
4. **The first step of `Image.thumbnail`**, Pillow's `reduce`, as block sums taken on each band
   as it goes by, on the block grid of the oriented image (`blocks`). Only the small array of
   block averages is turned north-up (fits2image's own rule, from the CD matrix, with the
   vertical-flip fallback and spectra left unturned), and Pillow's LANCZOS step finishes it
   with the same fractional box.
5. **The label**, as fits2image places it, in white.

Color follows fits2image's color mode (each channel scaled on its own, one orientation for
the three, stacked, then shrunk). The visual and blue frames are moved onto the red frame's
grid as `align_to_reference` moves them, bilinearly on the raw pixels, but band by band from
rows already in hand instead of through full-size FITS files (`registration` says why this
is not done on the reduced grid). fits2image takes a moved channel's zscale samples from the
resampled pixels; through an affine mapping those ~2000 pixels are interpolated on their own
first (`Resampler.samples`, Pillow's arithmetic), so that each band is then resampled, scaled
and summed in one pass and no resampled float copy of the frame is kept. Where the blocks
are single pixels (a 2048x2048 composite at 600 px) each channel is scaled straight into its
place in an RGB buffer that Pillow maps (`_composite`), oriented as it is written, and
Pillow's LANCZOS step reads it from there.

**Where the time goes.** fits2image on a 4096x4096 RICE frame at 200 px, 3 runs in one
process: decompression 0.27-0.36 s, the samples 0.02-0.10 s, `linear_scale` 0.46-0.66 s (float64
copies and their page faults), orientation and thumbnail 0.02-0.03 s. Decompression is
astropy's C codec here too, called without astropy's per-tile Python (`tiles`); everything
after it is what this renderer saves. For color from three 2048x2048 frames at 600 px the
fixed costs are the decompression (about 50 ms a frame), Pillow's bilinear resampling of two
frames (about 65 ms each) and its LANCZOS step on the 2048x2048 composite (about 55 ms), the
same steps fits2image's path takes; what is saved is astropy's per-tile overhead, the
float64 scaling, and the FITS files written and read back.

**The two passes.** The samples must be known before the first value can be scaled, and they
lie all over the frame: on a 4096x4096 frame one row in two holds one, on a 2048x2048 frame
nearly every row. So a frame is decompressed once: the first pass takes the samples and keeps
the decompressed rows, the second scales them.

* A frame of up to `IN_MEMORY_BYTES` (16 MiB as float32: 2048x2048) is read whole by
  astropy's full read, its fastest, and kept in memory: a fixed bound, not one that grows.
* A larger compressed frame is read in bands through sections and its rows go to an unnamed
  scratch file in the job's work directory (page cache, not the process's memory), read back
  a band at a time: on a 4096x4096 frame writing the 64 MiB cost about 25 ms and reading them
  back 6 ms. Reading only the sampled rows first would have decompressed half the frame a
  second time, about 0.15 s.
* A larger plain file is simply read twice.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.utils.exceptions import AstropyWarning
from fits2image.orientation import orientation_transform
from PIL import Image

from thumbservice.adapters.rendering.engine import display as display_step
from thumbservice.adapters.rendering.engine.blocks import (
    AxisGrid,
    AxisMap,
    BlockSums,
    Transform,
    block_grids,
    finish,
    orient,
    reduce_factors,
    thumbnail_size,
)
from thumbservice.adapters.rendering.engine.framefile import FrameFile
from thumbservice.adapters.rendering.engine.labels import draw_label
from thumbservice.adapters.rendering.engine.memory import render_errors_as_domain_errors
from thumbservice.adapters.rendering.engine.registration import (
    BackgroundSample,
    Registration,
    Resampler,
    register,
)
from thumbservice.adapters.rendering.engine.result import RenderResult
from thumbservice.adapters.rendering.engine.zscale import (
    GammaMap,
    SampleCollector,
    median_stretch,
    sample_stride,
    zscale_limits,
)
from thumbservice.domain.display import DisplayOptions
from thumbservice.domain.errors import (
    InvalidParameter,
    UnreadableFrame,
)

__all__ = ["Allocate", "RenderResult", "render", "render_picture"]

logger = logging.getLogger(__name__)

READ_PIXELS = 1 << 20
"""About how many pixels the first pass decompresses at a time (4 MiB as float32)."""

BAND_PIXELS = 1 << 19
"""About how many pixels the second pass scales at a time."""

IN_MEMORY_BYTES = 16 << 20
"""A frame whose pixels take up to this much stays in memory between the passes."""

Allocate = Callable[[int, int, int], np.ndarray]
"""Where a full-resolution picture goes: `(height, width, bands)` to a zeroed uint8 array,
height x width for 1 band (black and white), height x width x 4 for 4 (RGB in Pillow's layout,
the fourth byte unused)."""


def render(
    paths: Sequence[Path],
    *,
    width: int,
    height: int,
    label: str = "",
    color: bool = False,
    median: bool = False,
    percentile: float = 99.5,
    font_path: Path,
    align: bool = True,
    workdir: Path | None = None,
    display: DisplayOptions | None = None,
) -> RenderResult:
    """fits2image's picture of `paths`: one frame, or red, visual and blue for `color`.

    `display`, when given and not the default, replaces fits2image's scaling by its stretch
    and interval and colours the picture by its map (`display_step`).

    The image fits in `width` x `height` with its aspect kept, and is never enlarged.
    `workdir`, if given, takes the scratch file of a large compressed frame, which has no
    name and so leaves nothing behind. Bad input raises `UnreadableFrame`, or
    `FrameTooLarge` when it does not fit in memory; nothing else is raised.
    """
    if width < 1 or height < 1:
        raise InvalidParameter(f"The thumbnail size must be positive, not {width}x{height}")
    with render_errors_as_domain_errors(logger), warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if color:
            if len(paths) != 3:
                raise UnreadableFrame("A color image needs exactly three frames")
            return _render_color(
                [Path(p) for p in paths], (width, height), label, median, percentile,
                Path(font_path), align, workdir, display,
            )  # fmt: skip
        if len(paths) != 1:
            raise UnreadableFrame("A black-and-white image takes exactly one frame")
        return _render_single(
            Path(paths[0]), (width, height), label, median, percentile, Path(font_path),
            workdir, display,
        )  # fmt: skip


def render_picture(
    paths: Sequence[Path],
    allocate: Allocate,
    *,
    color: bool = False,
    median: bool = False,
    percentile: float = 99.5,
    align: bool = True,
    workdir: Path | None = None,
    display: DisplayOptions | None = None,
) -> RenderResult:
    """The full-resolution picture `render` shrinks, oriented, no label: written into the array
    `allocate` gives (see `Allocate`), and returned as an image over it (L or RGB).

    `display` scales it as `render` does; its colour map and inversion are not drawn here but
    on each view. `Image.thumbnail` of it, then the colours and the label, is `render`'s
    picture (`views`). Errors as `render`'s.
    """
    with render_errors_as_domain_errors(logger), warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if color:
            if len(paths) != 3:
                raise UnreadableFrame("A color image needs exactly three frames")
            return _render_color(
                [Path(p) for p in paths], (0, 0), "", median, percentile, Path(), align,
                workdir, display, picture=allocate,
            )  # fmt: skip
        if len(paths) != 1:
            raise UnreadableFrame("A black-and-white image takes exactly one frame")
        return _render_single(
            Path(paths[0]), (0, 0), "", median, percentile, Path(), workdir, display,
            picture=allocate,
        )  # fmt: skip


def _render_single(
    path: Path,
    wanted: tuple[int, int],
    label: str,
    median: bool,
    percentile: float,
    font_path: Path,
    workdir: Path | None,
    display: DisplayOptions | None = None,
    *,
    picture: Allocate | None = None,
) -> RenderResult:
    scaling = display_step.scaling(display)
    with FrameFile(path) as frame:
        transform: Transform = orientation_transform(frame.header)
        if transform is None:
            logger.info("No usable WCS in %s, falling back to a vertical flip", path.name)
        axes = AxisMap.of(transform)
        oriented_height, oriented_width = axes.oriented_shape(frame.height, frame.width)
        size = (oriented_width, oriented_height)
        final = None if picture else thumbnail_size(size, wanted)
        factors = reduce_factors(size, final) if final else (1, 1)
        rows, cols = block_grids(frame.height, frame.width, axes, factors)
        kept = None if picture is None else picture(oriented_height, oriented_width, 1)
        storage = None if kept is None else axes.unoriented_view(kept)
        sums = _scaled_blocks(
            frame, rows, cols, median, percentile, workdir, storage=storage, scaling=scaling
        )
    if kept is not None:
        # The picture is kept grey: the colour map is drawn on each view (`views`).
        if sums.sums is not storage:
            kept[...] = orient(sums.rounded(), transform)
        size = (kept.shape[1], kept.shape[0])
        return RenderResult(Image.frombuffer("L", size, kept, "raw", "L", 0, 1), None, "")
    reduced = Image.fromarray(orient(sums.rounded(), transform))
    image = display_step.colours(finish(reduced, size, factors, final), display)
    draw_label(image, label, font_path)
    return RenderResult(image, None, "")


def _render_color(
    paths: list[Path],
    wanted: tuple[int, int],
    label: str,
    median: bool,
    percentile: float,
    font_path: Path,
    align: bool,
    workdir: Path | None,
    display: DisplayOptions | None = None,
    *,
    picture: Allocate | None = None,
) -> RenderResult:
    with contextlib.ExitStack() as stack:
        frames = [stack.enter_context(FrameFile(path)) for path in paths]
        scaling = display_step.scaling(display, frames, BAND_PIXELS)
        transform = _shared_orientation(frames)
        axes = AxisMap.of(transform)
        shapes = [axes.oriented_shape(frame.height, frame.width) for frame in frames]
        registration = register(frames[0], frames[1:]) if align else None
        if registration is not None and registration.aligned:
            # Every frame is resampled onto the red frame's grid, or already lies on it.
            shapes = [shapes[0]] * len(frames)
        composite = (min(s[0] for s in shapes), min(s[1] for s in shapes))
        # fits2image crops frames of different sizes to the smallest, about their centres.
        regions = [
            ((h - composite[0]) // 2, (w - composite[1]) // 2, *composite) for h, w in shapes
        ]
        size = (composite[1], composite[0])
        final = None if picture else thumbnail_size(size, wanted)
        factors = reduce_factors(size, final) if final else (1, 1)
        # Blocks of one pixel are the composite itself: each channel is scaled straight into
        # its place in Pillow's RGB layout (4 bytes a pixel), oriented as it is written.
        stacked = np.zeros((*composite, 4), np.uint8) if factors == (1, 1) and final else None
        if picture is not None:
            stacked = picture(*composite, 4)
        planes = []
        for index, (frame, region) in enumerate(zip(frames, regions, strict=True)):
            storage = None if stacked is None else axes.unoriented_view(stacked[..., index])
            if registration is not None and index > 0 and registration.moves(index - 1):
                height, width = frames[0].height, frames[0].width
                rows, cols = block_grids(height, width, axes, factors, region)
                sums = _aligned_blocks(
                    frame, registration, index - 1, rows, cols, median, percentile, workdir,
                    storage=storage, scaling=scaling,
                )  # fmt: skip
            else:
                rows, cols = block_grids(frame.height, frame.width, axes, factors, region)
                sums = _scaled_blocks(
                    frame, rows, cols, median, percentile, workdir, storage=storage,
                    scaling=scaling,
                )  # fmt: skip
            planes.append(orient(sums.rounded(), transform))
    if stacked is not None and picture is not None:
        for index, plane in enumerate(planes):
            if not np.may_share_memory(plane, stacked):
                stacked[..., index] = plane
        image = finish(_composite(planes, stacked), size, factors, final)
    else:
        image = display_step.colours(
            finish(_composite(planes, stacked), size, factors, final), display
        )
    draw_label(image, label, font_path)
    if registration is None:
        return RenderResult(image, None, "")
    return RenderResult(image, registration.aligned, registration.note)


def _composite(planes: list[np.ndarray], stacked: np.ndarray | None) -> Image.Image:
    """The RGB image of the three oriented 8-bit planes.

    When the planes were written into `stacked` (height x width x 4, Pillow's own layout of
    an RGB image), Pillow maps that memory instead of copying it: on 2048x2048 frames that
    saves three plane buffers, `Image.merge` and 16 MiB of fresh pages. Otherwise, or where
    this Pillow does not map an RGB buffer, Pillow merges the planes.
    """
    if stacked is not None:
        try:
            height, width = stacked.shape[:2]
            core: Any = Image.core
            mapped = core.map_buffer(stacked, (width, height), "raw", 0, ("RGB", 0, 1))
            image = Image.Image()._new(mapped)
            if image.mode == "RGB" and image.size == (width, height):
                return image
        except Exception as err:  # a Pillow whose core differs: merge the planes
            logger.info("Merging the color planes: %s: %s", type(err).__name__, err)
    return Image.merge("RGB", [Image.fromarray(np.ascontiguousarray(p)) for p in planes])


def _shared_orientation(frames: list[FrameFile]) -> Transform:
    """fits2image's `_stack_orientation`: the first frame's that carries a usable WCS."""
    transforms = [orientation_transform(frame.header) for frame in frames]
    resolved = [t for t in transforms if t is not None]
    if not resolved:
        logger.info("No color frame carries a usable WCS: falling back to a vertical flip")
        return None
    if len(set(resolved)) > 1:
        logger.warning("Color frames disagree on their orientation: using %s", resolved[0])
    return resolved[0]


class _Bands:
    """The frame's decompressed rows, kept from the first pass for the second.

    In memory up to `IN_MEMORY_BYTES`, otherwise in a scratch file with no name.
    """

    def __init__(
        self,
        height: int,
        width: int,
        dtype: np.dtype,
        workdir: Path | None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Room for `height` rows, or `rows` themselves when already read whole."""
        self.width = width
        self.dtype = dtype
        self._memory: np.ndarray | None = rows
        self._file: io.BufferedRandom | None = None
        self._written = 0 if rows is None else rows.shape[0]
        if rows is not None:
            return
        if height * width * dtype.itemsize <= IN_MEMORY_BYTES:
            self._memory = np.empty((height, width), dtype=dtype)
        else:
            # Closed by close(); it has no name, so nothing is left even if that never runs.
            self._file = tempfile.TemporaryFile(dir=workdir, prefix="bands-")  # noqa: SIM115

    @property
    def whole(self) -> bool:
        """Whether the rows were read whole, so that the first pass only looks at them."""
        return self._memory is not None and self._written == self._memory.shape[0]

    def read_raw(self) -> np.ndarray:
        assert self._memory is not None
        return self._memory

    def write(self, rows: np.ndarray) -> None:
        count = rows.shape[0]
        if self._memory is not None:
            self._memory[self._written : self._written + count] = rows
        else:
            assert self._file is not None
            self._file.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self._written += count

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows `start` to `stop` as a float32 array the caller may overwrite.

        Rows kept in memory as native float32 come as they are, not copied: the second pass
        reads each row once and scales it in place.
        """
        if self._memory is not None:
            if self._memory.dtype == np.float32 and self._memory.dtype.isnative:
                return self._memory[start:stop]
            return self._memory[start:stop].astype(np.float32)
        assert self._file is not None
        rows = np.empty((stop - start, self.width), dtype=self.dtype)
        self._file.seek(start * self.width * self.dtype.itemsize)
        if self._file.readinto(rows.data) != rows.nbytes:
            raise OSError("the scratch file came back short")
        return rows if rows.dtype == np.float32 else rows.astype(np.float32)

    def close(self) -> None:
        self._memory = None
        if self._file is not None:
            self._file.close()


def _kept_rows(frame: FrameFile, workdir: Path | None) -> _Bands:
    """Where a frame's rows wait between the passes.

    A frame that fits in `IN_MEMORY_BYTES` is read whole, by its fastest full read.
    """
    if _small(frame):
        rows = frame.whole()
        return _Bands(frame.height, frame.width, rows.dtype, workdir, rows=rows)
    return _Bands(frame.height, frame.width, _band_dtype(frame), workdir)


def _small(frame: FrameFile) -> bool:
    """Whether the frame's pixels, as float32 at most, fit in `IN_MEMORY_BYTES`."""
    return frame.height * frame.width * 4 <= IN_MEMORY_BYTES


def _band_dtype(frame: FrameFile) -> np.dtype:
    """What the kept rows are stored as: the data's own type when it is at most 4 bytes."""
    first = frame.rows(0, 1)
    dtype = first.dtype.newbyteorder("=")
    if dtype.kind in "iuf" and dtype.itemsize <= 4:
        return dtype
    return np.dtype(np.float32)


def _first_pass(
    frame: FrameFile, bands: _Bands | None, background: BackgroundSample | None = None
) -> SampleCollector:
    """Read the frame once for its zscale samples, keeping the rows when `bands` is given."""
    collector = SampleCollector(frame.width, sample_stride(*frame.naxis))
    if bands is not None and bands.whole:
        rows = bands.read_raw()
        collector.add(0, rows)
        if background is not None:
            background.add(0, rows)
        return collector
    step = max(frame.tile_rows, READ_PIXELS // frame.width // frame.tile_rows * frame.tile_rows)
    for start in range(0, frame.height, step):
        rows = frame.rows(start, min(start + step, frame.height))
        collector.add(start, rows)
        if bands is not None:
            bands.write(rows)
        if background is not None:
            background.add(start, rows)
        del rows
        frame.release()
    return collector


def _segments(
    rows: AxisGrid, height: int, target: int, whole_frame: bool
) -> Iterator[tuple[int | None, int, int]]:
    """The second pass's bands of about `target` rows: (first block or None, start, stop).

    Bands outside the grid (None) only count towards the histogram of the whole frame.
    """
    if whole_frame:
        for start in range(0, rows.start, target):
            yield None, start, min(start + target, rows.start)
    for first, _, start, stop in rows.bands(target):
        yield first, start, stop
    if whole_frame:
        for start in range(rows.stop, height, target):
            yield None, start, min(start + target, height)


def _scaled_blocks(
    frame: FrameFile,
    rows: AxisGrid,
    cols: AxisGrid,
    median: bool,
    percentile: float,
    workdir: Path | None,
    *,
    storage: np.ndarray | None = None,
    scaling: display_step.DisplayScaling | None = None,
) -> BlockSums:
    """Scale the frame as fits2image does (or as `scaling` says) and sum the 8-bit values
    over the block grid."""
    if not frame.compressed and not _small(frame):
        samples = _first_pass(frame, None).samples()

        def read(start: int, stop: int) -> np.ndarray:
            values = frame.rows(start, stop).astype(np.float32)
            frame.release()
            return values

        return _second_pass(
            read, samples, frame.height, frame.width, rows, cols, median, percentile, storage,
            scaling,
        )  # fmt: skip
    bands = _kept_rows(frame, workdir)
    try:
        samples = _first_pass(frame, bands).samples()
        return _second_pass(
            bands.read, samples, frame.height, frame.width, rows, cols, median, percentile,
            storage, scaling,
        )  # fmt: skip
    finally:
        bands.close()


def _aligned_blocks(
    frame: FrameFile,
    registration: Registration,
    index: int,
    rows: AxisGrid,
    cols: AxisGrid,
    median: bool,
    percentile: float,
    workdir: Path | None,
    *,
    storage: np.ndarray | None = None,
    scaling: display_step.DisplayScaling | None = None,
) -> BlockSums:
    """As `_scaled_blocks`, for a frame resampled onto the reference's grid first.

    The zscale samples are the resampled pixels, as fits2image takes them from the file
    `align_to_reference` writes. Through an affine mapping they are interpolated on their
    own (`Resampler.samples`), and each band is resampled, scaled and summed in one go.
    Through a mesh, whose cells Pillow maps on its own, the frame is resampled first.
    """
    assert registration.reference is not None
    height, width = registration.reference.height, registration.reference.width
    kept = _kept_rows(frame, workdir)
    try:
        background = BackgroundSample(frame.height, frame.width)
        _first_pass(frame, kept, background)
        resampler = Resampler(registration, index, background.median())
        stride = sample_stride(width, height)
        step = max(1, READ_PIXELS // width)
        if resampler.cells is None:
            samples = resampler.samples(stride, kept.read, step)
            # Each band is scaled before the next is resampled: one buffer serves them all.
            scratch = np.empty((max(1, BAND_PIXELS // width, rows.factor), width), np.float32)

            def resampled(start: int, stop: int) -> np.ndarray:
                return resampler.band(start, stop, kept.read, scratch)

            return _second_pass(
                resampled, samples, height, width, rows, cols, median, percentile, storage,
                scaling,
            )  # fmt: skip
        moved = _Bands(height, width, np.dtype(np.float32), workdir)
        try:
            collector = SampleCollector(width, stride)
            step = resampler.band_rows(step)
            for start in range(0, height, step):
                band = resampler.band(start, min(start + step, height), kept.read)
                collector.add(start, band)
                moved.write(band)
            kept.close()
            return _second_pass(
                moved.read, collector.samples(), height, width, rows, cols, median, percentile,
                storage, scaling,
            )  # fmt: skip
        finally:
            moved.close()
    finally:
        kept.close()


def _second_pass(
    read: Callable[[int, int], np.ndarray],
    samples: np.ndarray,
    height: int,
    width: int,
    rows: AxisGrid,
    cols: AxisGrid,
    median: bool,
    percentile: float,
    storage: np.ndarray | None = None,
    scaling: display_step.DisplayScaling | None = None,
) -> BlockSums:
    """Scale rows `read(start, stop)` gives, and sum them over the block grid (in `storage`,
    for blocks of one pixel, when given). With `scaling`, its interval is measured on the
    rows first (another read of them) and its stretch replaces fits2image's.

    With `median`, fits2image's `recalculate_median` needs the histogram of the whole 8-bit
    frame first, so the 8-bit bands are kept (one byte a pixel) until it is complete.
    """
    target = max(1, BAND_PIXELS // width)
    gamma: GammaMap | display_step.LevelMap
    if scaling is None:
        gamma = GammaMap(*zscale_limits(samples))
    else:
        gamma = scaling.for_channel(read, height, width, target)
    may_be_nan = samples.dtype.kind == "f"
    sums = BlockSums(rows, cols, storage)
    kept: list[tuple[int, np.ndarray]] = []
    histogram = np.zeros(256, dtype=np.int64)
    for first, start, stop in _segments(rows, height, target, whole_frame=median):
        direct = None if median or first is None else sums.target(first, stop - start)
        if direct is not None:
            # Blocks of one pixel: the grid's columns are scaled straight into the sums.
            gamma.apply(read(start, stop)[:, cols.start : cols.stop], may_be_nan, out=direct)
            continue
        values = gamma.apply(read(start, stop), may_be_nan)
        if median:
            histogram += np.bincount(values.reshape(-1), minlength=256)
            if first is not None:
                kept.append((first, values))
        elif first is not None:
            sums.add(first, values)
    if median:
        stretch = median_stretch(histogram, percentile)
        for first, values in kept:
            sums.add(first, np.take(stretch, values))
    return sums
