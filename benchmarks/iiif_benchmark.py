"""Deep zoom through the service, on the same stack as the service benchmark (the archive
stand-in in a thread, moto's S3, the service as a subprocess with two render workers), one run:

- the cold 200 px thumbnail of a 4096² frame no request has touched: the baseline;
- the first 512 px tile of another cold 4096² frame, against that baseline;
- a viewer's burst on a third cold frame: the 85 tiles of all its levels as OpenSeadragon asks
  for them, 6 at a time, with the frame's downloads counted by the archive stand-in;
- then, with that frame in hand, one 512 px tile after the other (p50 of 30) and info.json
  (p50 of 30);
- the prototype's method (LCOGT/ocsarchive-iiif: astropy's zscale over the whole frame for
  each tile, then crop and resize), in this process on the same tile, as the anchor.

The service keeps the frame's picture in its frame cache (the default), so a tile of a frame
in hand is cut from it and a burst decodes the frame once. Run from the repository:
`.venv/bin/python benchmarks/iiif_benchmark.py`; figures in benchmarks/README.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from benchmarks.service.harness import (  # noqa: E402
    BenchFrame,
    archive_in_thread,
    s3_server,
    start_service,
    stop_service,
    wait_ready,
)
from thumbservice.adapters.archive.dev.frames import FrameSpec, write_frame  # noqa: E402
from thumbservice.domain.iiif import TILE_SIZE, scale_factors, tile_region  # noqa: E402

SIZE = 4096
BURST_CONCURRENCY = 6
REPEATS = 30


def generate(directory: Path) -> dict[str, list[BenchFrame]]:
    specs = {
        name: (7100 + i, FrameSpec(f"ogg1m001-fa16-20261201-{i:04d}-e91", width=SIZE, height=SIZE,
                                   field_seed=300 + i, noise_seed=400 + i, request_id=4000 + i))
        for i, name in enumerate(("thumbnail", "first_tile", "burst", "warmup"))
    }  # fmt: skip
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = {n: pool.submit(write_frame, spec, directory) for n, (_, spec) in specs.items()}
        return {
            name: [BenchFrame(frame_id, spec, futures[name].result())]
            for name, (frame_id, spec) in specs.items()
        }


def tile_urls(frame_id: int, width: int, height: int) -> list[str]:
    """Every tile of every level, smallest level first, as OpenSeadragon builds their URLs."""
    urls = []
    for factor in reversed(scale_factors(width, height)):
        columns = math.ceil(width / (TILE_SIZE * factor))
        rows = math.ceil(height / (TILE_SIZE * factor))
        for row in range(rows):
            for column in range(columns):
                box, (w, h) = tile_region(column, row, factor, width, height)
                if (box.width, box.height) == (width, height):
                    region = "full"
                else:
                    region = f"{box.x},{box.y},{box.width},{box.height}"
                urls.append(f"/iiif/3/{frame_id}/{region}/{w},{h}/0/default.jpg")
    return urls


async def timed(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {await response.text()}")
    return time.perf_counter() - started


def prototype_tile(path: Path) -> float:
    """LCO's prototype for one tile: the whole frame read, zscale over all of it, the tile cut,
    stretched, resized and encoded."""
    import io

    import numpy as np
    from astropy.io import fits
    from astropy.visualization import ZScaleInterval
    from PIL import Image

    started = time.perf_counter()
    with fits.open(path) as hdul:
        data = next(h.data for h in hdul if getattr(h, "data", None) is not None)
        data = np.asarray(data, dtype=np.float64)
    low, high = ZScaleInterval().get_limits(data)
    tile = data[0:TILE_SIZE, 0:TILE_SIZE]
    scaled = np.clip((tile - low) / (high - low), 0, 1) * 255
    image = Image.fromarray(scaled.astype(np.uint8)).resize((TILE_SIZE, TILE_SIZE))
    image.save(io.BytesIO(), "JPEG", quality=80)
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def measure(base: str, frames: dict[str, list[BenchFrame]], stub: object) -> None:
    downloads = stub.downloads  # type: ignore[attr-defined]
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base, timeout=timeout) as session:
        # The workers' first imports, on a frame of its own.
        await timed(session, f"/{frames['warmup'][0].frame_id}/?image=true")
        await timed(session, f"/iiif/3/{frames['warmup'][0].frame_id}/full/256,/0/default.jpg")

        thumbnail = await timed(session, f"/{frames['thumbnail'][0].frame_id}/?image=true")
        first_id = frames["first_tile"][0].frame_id
        first = await timed(session, f"/iiif/3/{first_id}/0,0,512,512/512,512/0/default.jpg")

        burst_id = frames["burst"][0].frame_id
        urls = tile_urls(burst_id, SIZE, SIZE)
        gate = asyncio.Semaphore(BURST_CONCURRENCY)

        async def one(url: str) -> float:
            async with gate:
                return await timed(session, url)

        started = time.perf_counter()
        latencies = await asyncio.gather(*(one(u) for u in urls))
        burst = time.perf_counter() - started

        tile = f"/iiif/3/{burst_id}/1024,1024,512,512/512,512/0/default.jpg"
        warm = [await timed(session, tile) for _ in range(REPEATS)]
        info = [await timed(session, f"/iiif/3/{burst_id}/info.json") for _ in range(REPEATS)]

    prototype = [prototype_tile(frames["burst"][0].path) for _ in range(3)]
    print(f"\nDeep zoom on {SIZE}x{SIZE} RICE frames, one run, 2 render workers")
    print(f"  cold 200 px thumbnail (baseline): {ms(thumbnail)}")
    print(f"  first 512 px tile of a cold frame: {ms(first)} ({first / thumbnail:.2f}x)")
    print(
        f"  burst of {len(urls)} tiles, {BURST_CONCURRENCY} at a time, cold: {ms(burst)} "
        f"({burst / thumbnail:.2f}x), downloads of the frame: {downloads[burst_id]}, "
        f"tile p50 {ms(statistics.median(latencies))}, max {ms(max(latencies))}"
    )
    print(
        f"  512 px tile of the frame in hand, one client: p50 {ms(statistics.median(warm))} "
        f"(min {ms(min(warm))}, max {ms(max(warm))}, {REPEATS} requests)"
    )
    print(
        f"  info.json: p50 {ms(statistics.median(info))} (max {ms(max(info))}, {REPEATS} requests)"
    )
    print(
        f"  the prototype's method for one tile (zscale over the frame, crop, resize), in "
        f"process: median {ms(statistics.median(prototype))} of 3"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="iiif-bench-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        frames = generate(workdir / "frames")
        print(f"Generated {len(frames)} frames in {time.perf_counter() - started:.1f} s")
        with s3_server() as endpoint, archive_in_thread(workdir / "frames", frames) as stub:
            service = start_service(stub.root, endpoint, workdir, {"LOG_LEVEL": "WARNING"})
            try:

                async def run() -> None:
                    async with aiohttp.ClientSession() as session:
                        await wait_ready(session, service)
                    await measure(service.base, frames, stub)

                asyncio.run(run())
            finally:
                stop_service(service, [])


if __name__ == "__main__":
    main()
