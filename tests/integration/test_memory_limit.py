"""The memory ceiling of a render worker, in a process of its own: a clean error, not a kill."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame
from thumbservice.adapters.rendering.engine.memory import apply_memory_limit

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from thumbservice.adapters.rendering import fits2image_renderer
    from thumbservice.adapters.rendering.engine import fast
    from thumbservice.adapters.rendering.engine.labels import FONT_PATH
    from thumbservice.adapters.rendering.engine.memory import apply_memory_limit
    from thumbservice.domain.errors import ThumbnailError

    frame, renderer, headroom = sys.argv[1], sys.argv[2], int(sys.argv[3])
    font = FONT_PATH
    module = fast if renderer == "fast" else fits2image_renderer
    status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status")
              if l.startswith("VmData")}
    apply_memory_limit(status["VmData"] * 1024 + headroom)
    try:
        image = module.render([Path(frame)], width=200, height=200, font_path=font).image
        outcome = {"size": list(image.size)}
    except ThumbnailError as err:
        outcome = {"error": type(err).__name__, "message": err.message}
    print(json.dumps(outcome))
    """
)


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_frame(FrameSpec("limit-e91", 2048, 2048), tmp_path_factory.mktemp("limit"))


def run_worker(frame: Path, renderer: str, headroom_mib: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(frame), renderer, str(headroom_mib * 1024 * 1024)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
    )
    # Killed (by the kernel or a signal) would show as a negative return code.
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_frame_over_the_limit_is_a_clean_frame_too_large(frame: Path) -> None:
    # 60 MiB above what the imports take: fits2image needs about 110 MiB more for 2048x2048.
    assert run_worker(frame, "fits2image", 60) == {
        "error": "OutOfMemory",  # a FrameTooLarge: the pool renews its workers on it
        "message": "The frame is too large to render within a worker's memory",
    }
    assert run_worker(frame, "fast", 2)["error"] == "OutOfMemory"


def test_the_fast_renderer_fits_where_fits2image_does_not(frame: Path) -> None:
    assert run_worker(frame, "fast", 60) == {"size": [200, 200]}


def test_no_limit_leaves_the_process_alone() -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_DATA)
    apply_memory_limit(None)
    assert resource.getrlimit(resource.RLIMIT_DATA) == before
    with pytest.raises(ValueError):
        apply_memory_limit(0)


async def test_the_pool_answers_too_large_and_renews_its_workers(tmp_path: Path) -> None:
    import asyncio

    from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
    from thumbservice.domain.errors import FrameTooLarge
    from thumbservice.domain.spec import ThumbnailSpec

    big = write_frame(FrameSpec("big-e91", 4096, 4096, stars=50), tmp_path)
    small = write_frame(FrameSpec("small-e91", 256, 256, stars=20), tmp_path)
    # fits2image needs about 600 MiB for 4096x4096; its worker starts with about 100.
    pool = ProcessPoolRenderer(
        1, max_pixels=10**8, renderer="fits2image", memory_limit=300 * 1024 * 1024
    )
    pool.start()
    try:
        first = pool._pool
        with pytest.raises(FrameTooLarge, match="memory"):
            await pool.render([big], ThumbnailSpec.from_query("1", {}), tmp_path)
        assert pool._pool is not first  # renewed
        data = await pool.render([small], ThumbnailSpec.from_query("1", {}), tmp_path)
        assert data[:2] == b"\xff\xd8"
    finally:
        await asyncio.to_thread(pool.close)
