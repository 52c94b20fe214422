"""The service as deployed: real processes, SIGTERM, and two instances sharing one S3 bucket."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support.archive_server import ArchiveStub, Fault
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.support.service import service_process
from thumbservice.adapters.rendering.framecache import is_cache_directory
from thumbservice.adapters.workspace import TempWorkspace


def environment(archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path) -> dict:
    return {
        "ARCHIVE_API_URL": archive.root,
        "AWS_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "STORAGE_URL": s3_endpoint,
        "TMP_DIR": str(scratch),
        "RENDER_WORKERS": "1",
        "SHUTDOWN_TIMEOUT": "20",
        "LOG_LEVEL": "WARNING",
    }


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


async def test_sigterm_finishes_in_flight_work_and_leaves_tmp_dir_empty(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    leftover = scratch / f"thumbservice-{dead_pid()}-killed"
    leftover.mkdir()
    (leftover / "frame-0.fits.fz").write_bytes(b"half a download")
    env = environment(archive, bucket, s3_endpoint, scratch)
    async with (
        service_process(env, tmp_path / "service.log") as service,
        aiohttp.ClientSession() as http,
    ):
        assert not leftover.exists(), "start-up did not remove a dead process's scratch files"
        archive.file_fault = Fault(stall=1.0)
        in_flight = asyncio.create_task(http.get(f"{service.url}/101/?width=120"))
        while not any(p.name.startswith("thumbservice-") for p in scratch.iterdir()):
            await asyncio.sleep(0.02)
        service.process.send_signal(signal.SIGTERM)
        response = await in_flight
        assert response.status == 200
        assert (await response.json())["url"]
        assert await asyncio.wait_for(service.process.wait(), 30) == 0
    assert list(scratch.iterdir()) == []


async def test_two_instances_share_the_cache(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    env = {**environment(archive, bucket, s3_endpoint, scratch), "LOG_LEVEL": "INFO"}
    async with (
        service_process(env, tmp_path / "a.log") as first,
        service_process(env, tmp_path / "b.log") as second,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"{first.url}/101/?width=140") as response:
            assert response.status == 200
            from_first = (await response.json())["url"].split("?")[0]
        assert archive.downloads[101] == 1
        async with http.get(f"{second.url}/101/?width=140") as response:
            assert response.status == 200
            from_second = (await response.json())["url"].split("?")[0]
        assert from_first == from_second
        assert archive.downloads[101] == 1, "the second instance rendered again"
        async with http.get(f"{second.url}/metrics") as response:
            assert 'thumbservice_cache_lookups_total{result="hit"} 1.0' in await response.text()
        async with http.get(
            f"{second.url}/101/?width=140", headers={"X-Request-ID": "trace-42"}
        ) as response:
            assert response.headers["X-Request-ID"] == "trace-42"
    # The services have stopped (SIGTERM, awaited): their logs are complete.
    # One JSON line per request, with the request id and whether the cache answered.
    lines = [json.loads(line) for line in (tmp_path / "b.log").read_text().splitlines()]
    traced = [line for line in lines if line.get("request_id") == "trace-42"]
    assert len(traced) == 1
    assert traced[0]["event"] == "request"
    assert traced[0]["cache"] == "hit"
    assert traced[0]["status"] == 200
    assert traced[0]["path"] == "/101/"
    assert traced[0]["method"] == "GET"
    assert traced[0]["duration_ms"] >= 0


async def test_a_bad_variable_stops_start_up_naming_it(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "thumbservice",
        env={"PORT": "eighty", "PATH": "/usr/bin:/bin"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"PORT" in err


async def test_render_workers_die_with_a_killed_server(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    from tests.support.service import descendants

    env = environment(archive, bucket, s3_endpoint, scratch)
    async with service_process(env, tmp_path / "service.log") as service:
        async with aiohttp.ClientSession() as http, http.get(f"{service.url}/101/?width=90") as r:
            assert r.status == 200  # the worker has started and rendered
        below = descendants(service.process.pid)
        assert below, "no render worker"
        service.process.kill()
        await service.process.wait()
        for _ in range(100):
            alive = [pid for pid in below if Path(f"/proc/{pid}").exists()]
            if not alive:
                break
            await asyncio.sleep(0.1)
        assert not alive, f"processes outlived the killed server: {alive}"
    # A killed server cannot remove its frame cache: the next start does, as it does scratch.
    left = list(scratch.iterdir())
    assert all(is_cache_directory(p) for p in left)
    assert TempWorkspace(scratch).clean_stale() == len(left)
