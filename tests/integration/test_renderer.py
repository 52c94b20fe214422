"""The fits2image renderer in its process pool, on real generated FITS files."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.blocking import BlockingFrame
from tests.support.imaging import decode
from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame
from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
from thumbservice.domain.errors import FrameTooLarge, RenderFailed, UnreadableFrame
from thumbservice.domain.spec import ThumbnailSpec


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("render-frames")
    specs = {
        "bw": FrameSpec("bw-e91", width=600, height=400),
        "red": FrameSpec("r-e91", width=256, height=256, filter="rp", field_seed=3),
        "visual": FrameSpec(
            "v-e91", width=256, height=256, filter="V", field_seed=3, offset=(4, 2)
        ),
        "blue": FrameSpec("b-e91", width=256, height=256, filter="B", field_seed=3, offset=(-3, 1)),
    }
    paths = {name: write_frame(spec, directory) for name, spec in specs.items()}
    corrupt = directory / "corrupt.fits.fz"
    corrupt.write_bytes(b"not a fits file at all" * 50)
    paths["corrupt"] = corrupt
    return paths


@pytest.fixture(scope="module")
def renderer() -> Iterator[ProcessPoolRenderer]:
    renderer = ProcessPoolRenderer(1, max_pixels=1_000_000)
    renderer.start()
    yield renderer
    renderer.close()


def request(**query: str) -> ThumbnailSpec:
    return ThumbnailSpec.from_query("1", query)


async def test_renders_a_jpeg_that_fits_the_box(
    renderer: ProcessPoolRenderer, frames: dict[str, Path], tmp_path: Path
) -> None:
    data = await renderer.render([frames["bw"]], request(width="300", height="300"), tmp_path)
    image = decode(data)
    assert image.size == (300, 200)
    pixels = np.asarray(image.convert("L"))
    assert pixels.max() > 200  # stars
    assert np.median(pixels) < 120  # dark sky


async def test_color_composite_with_a_white_label(
    renderer: ProcessPoolRenderer, frames: dict[str, Path], tmp_path: Path
) -> None:
    sources = [frames["red"], frames["visual"], frames["blue"]]
    data = await renderer.render(sources, request(color="true", label="WWWW"), tmp_path)
    image = decode(data).convert("RGB")
    assert image.size == (200, 200)
    corner = np.asarray(image.crop((0, 176, 60, 200)), dtype=np.int16)
    bright = corner[corner.sum(axis=2) > 600]
    assert len(bright) > 20, "no label drawn"
    # white, not red: every channel of the label's pixels is bright
    assert bright.min(axis=0).min() > 150


async def test_too_many_pixels_is_refused_from_the_header(
    renderer: ProcessPoolRenderer, frames: dict[str, Path], tmp_path: Path
) -> None:
    small = ProcessPoolRenderer(1, max_pixels=100_000)
    try:
        with pytest.raises(FrameTooLarge, match="600x400"):
            await small.render([frames["bw"]], request(), tmp_path)
    finally:
        small.close()


async def test_corrupt_file_is_unreadable(
    renderer: ProcessPoolRenderer, frames: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(UnreadableFrame):
        await renderer.render([frames["corrupt"]], request(), tmp_path)


async def test_a_dead_worker_fails_the_job_and_the_pool_recovers(
    frames: dict[str, Path], tmp_path: Path
) -> None:
    renderer = ProcessPoolRenderer(1, max_pixels=10_000_000)
    try:
        await renderer.warm()
        pool = renderer._pool
        assert pool is not None
        with BlockingFrame(tmp_path / "held.fits") as held:
            job = asyncio.ensure_future(renderer.render([held.path], request(), tmp_path))
            await held.opened_by_a_worker()  # the worker is inside the job, reading the file
            for pid in list(pool._processes):  # it dies mid-render, as under the OOM killer
                os.kill(pid, signal.SIGKILL)
            with pytest.raises(RenderFailed):
                await job
        data = await renderer.render([frames["bw"]], request(width="50"), tmp_path)
        assert decode(data).size == (50, 33)
    finally:
        renderer.close()


async def test_a_render_past_its_timeout_is_stopped_and_the_pool_recovers(
    frames: dict[str, Path], tmp_path: Path
) -> None:
    renderer = ProcessPoolRenderer(1, max_pixels=10_000_000, render_timeout=0.5)
    try:
        await renderer.warm()
        stuck = renderer._pool
        assert stuck is not None
        workers = list(stuck._processes.values())
        # Nobody ever writes the file: the render can only end by its timeout.
        with (
            BlockingFrame(tmp_path / "never.fits") as held,
            pytest.raises(RenderFailed, match="longer than"),
        ):
            await renderer.render([held.path], request(), tmp_path)
        for worker in workers:
            worker.join(5)
            # The pool's own thread may reap the worker first, and then `is_alive()` cannot
            # tell: a killed worker is gone from /proc, or a zombie there.
            assert worker.exitcode is not None or not running(worker.pid)
        renderer.render_timeout = 60
        data = await renderer.render([frames["bw"]], request(width="40"), tmp_path)
        assert decode(data).size == (40, 27)
    finally:
        renderer.close()


async def test_a_pool_that_cannot_run_the_job_is_render_failed(
    frames: dict[str, Path], tmp_path: Path
) -> None:
    from concurrent.futures import Executor

    class Refusing(Executor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("can't start new process")

    broken = ProcessPoolRenderer(1, max_pixels=10**8)
    broken._pool = Refusing()  # type: ignore[assignment]
    with pytest.raises(RenderFailed, match="retry"):
        await broken.render([frames["bw"]], ThumbnailSpec.from_query("1", {}), tmp_path)


AS_PID_ONE = """
import asyncio, os, sys
from pathlib import Path
from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
from thumbservice.domain.spec import ThumbnailSpec

async def main() -> None:
    renderer = ProcessPoolRenderer(1, max_pixels=10_000_000)
    try:
        await renderer.warm()
        spec = ThumbnailSpec.from_query("1", {"width": "60"})
        data = await renderer.render([Path(sys.argv[1])], spec, Path(sys.argv[2]))
    finally:
        renderer.close()
    print(f"pid {os.getpid()} rendered {len(data)} bytes")

asyncio.run(main())
"""


def test_a_server_that_is_pid_1_keeps_its_render_workers(
    frames: dict[str, Path], tmp_path: Path
) -> None:
    """A container's exec-form ENTRYPOINT makes the server PID 1: its workers' parent is 1."""
    import subprocess
    import sys

    from tests.support.namespaces import as_pid_one, skip_unless_available

    skip_unless_available()
    done = subprocess.run(
        as_pid_one([sys.executable, "-c", AS_PID_ONE, str(frames["bw"]), str(tmp_path)]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].startswith("pid 1 rendered ")


@pytest.mark.parametrize(("parent", "alive"), [("own", True), ("other", False)])
def test_a_worker_whose_server_is_gone_exits(parent: str, alive: bool) -> None:
    """The server may die before PR_SET_PDEATHSIG takes effect: the worker's parent is then not
    the server that started it, and the worker exits."""
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "from thumbservice.adapters.rendering.worker import _die_with_parent\n"
        "expected = os.getppid() if sys.argv[1] == 'own' else os.getppid() + 1\n"
        "_die_with_parent(expected)\n"
        "print('alive')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, parent], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == ((0, "alive") if alive else (1, ""))


async def test_a_pool_replaced_again_and_again_is_not_ready_until_it_settles(
    frames: dict[str, Path], tmp_path: Path
) -> None:
    from thumbservice.adapters.rendering.pool import UNHEALTHY_REPLACEMENTS, UNHEALTHY_WINDOW

    now = [1000.0]
    renderer = ProcessPoolRenderer(1, max_pixels=10_000_000, clock=lambda: now[0])
    try:
        for death in range(UNHEALTHY_REPLACEMENTS):
            await renderer.check()  # ready until the last death
            await renderer.render([frames["bw"]], request(width="30"), tmp_path)
            pool = renderer._pool
            assert pool is not None
            with BlockingFrame(tmp_path / f"held-{death}.fits") as held:
                job = asyncio.ensure_future(renderer.render([held.path], request(), tmp_path))
                await held.opened_by_a_worker()
                for pid in list(pool._processes):  # killed mid-render, as by the OOM killer
                    os.kill(pid, signal.SIGKILL)
                with pytest.raises(RenderFailed):
                    await job
            now[0] += 1.0
        with pytest.raises(RenderFailed, match=f"replaced {UNHEALTHY_REPLACEMENTS} times"):
            await renderer.check()
        # Every job still runs meanwhile; readiness only keeps new traffic away for a while.
        data = await renderer.render([frames["bw"]], request(width="30"), tmp_path)
        assert decode(data).size == (30, 20)
        now[0] += UNHEALTHY_WINDOW
        await renderer.check()
    finally:
        await renderer.aclose()


def running(pid: int | None) -> bool:
    """Whether the process runs (exists and is not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
