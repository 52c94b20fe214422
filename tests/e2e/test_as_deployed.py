"""The service laid out as the container image and the Deployment run it, without a container.

The image's exec-form ENTRYPOINT makes the service PID 1 of the container's PID namespace; the
Deployment gives it a read-only root with /tmp alone writable. Both are made here with Linux
namespaces (`tests/support/namespaces.py`), so `make test` checks them on any Linux machine,
container engine or not.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.e2e.test_processes import environment
from tests.support.archive_server import ArchiveStub
from tests.support.imaging import decode
from tests.support.namespaces import as_pid_one, read_only_except, skip_unless_available
from tests.support.service import ServiceProcess, descendants, service_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    skip_unless_available()


def image_environment() -> dict[str, str]:
    """The variables the Dockerfile sets where things are written."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = dict(re.findall(r"\b(\w+)=(/\S*)", " ".join(re.findall(r"^ENV (.*)$", text, re.M))))
    return {
        name: env[name] for name in ("TMP_DIR", "LOCAL_STORE_DIR", "SAMPLE_ARCHIVE_DIR", "HOME")
    }


def pid_in_its_namespace(pid: int) -> int:
    """The pid the process has in its own (innermost) PID namespace."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^NSpid:(.*)$", status, re.M).group(1).split()[-1])  # type: ignore[union-attr]


async def stop(service: ServiceProcess) -> int:
    service.terminate()
    return await asyncio.wait_for(service.process.wait(), 60)


async def test_the_service_as_pid_1_renders_and_stops_on_sigterm(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> None:
    env = environment(archive, bucket, s3_endpoint, scratch)
    async with (
        service_process(env, tmp_path / "service.log", launcher=as_pid_one) as service,
        aiohttp.ClientSession() as http,
    ):
        assert pid_in_its_namespace(service.server_pid) == 1
        async with http.get(f"{service.url}/101/?width=90&image=true") as response:
            assert response.status == 200, await response.text()
            assert decode(await response.read()).size == (90, 68)
        async with http.get(f"{service.url}/101/?width=91") as response:
            assert response.status == 200
            url = (await response.json())["url"]
        async with http.get(url) as stored:
            assert decode(await stored.read()).width == 91
        async with http.get(f"{service.url}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["renderer"] == "ok"
        assert descendants(service.server_pid), "no render worker below PID 1"
        # PID 1 gets no signal its handlers do not take: SIGTERM must be one of them.
        assert await stop(service) == 0


async def test_a_read_only_root_with_tmp_writable_renders_with_the_images_defaults(
    tmp_path: Path,
) -> None:
    env = {
        **image_environment(),
        "ARCHIVE_SOURCE": "samples",
        "THUMBNAIL_STORE": "local",
        "RENDER_WORKERS": "1",
        "LOG_LEVEL": "WARNING",
    }
    launcher = lambda command: read_only_except(Path("/tmp"), command)  # noqa: E731
    async with (
        service_process(env, tmp_path / "service.log", launcher=launcher) as service,
        aiohttp.ClientSession() as http,
    ):
        assert pid_in_its_namespace(service.server_pid) == 1
        async with http.get(f"{service.url}/1001/?width=120&format=png") as response:
            assert response.status == 200, await response.text()
            url = (await response.json())["url"]
        async with http.get(url) as stored:  # the local store, on the tmpfs
            assert decode(await stored.read(), "PNG").width == 120
        color = f"{service.url}/1003/?color=true&width=100&height=100&format=png&image=true"
        async with http.get(color) as response:
            assert response.status == 200, await response.text()
            pixels = np.asarray(decode(await response.read(), "PNG").convert("RGB"), np.int16)
        spread = pixels.max(axis=2) - pixels.min(axis=2)
        assert (spread > 24).sum() >= 10, "the colour composite is grey"
        async with http.get(f"{service.url}/readyz") as response:
            assert response.status == 200, await response.text()
        assert await stop(service) == 0
    assert "Read-only file system" not in (tmp_path / "service.log").read_text()


async def test_a_directory_it_cannot_write_stops_start_up_in_one_line(tmp_path: Path) -> None:
    unwritable = ROOT / "var" / "not-on-the-writable-mount"
    env = {
        **image_environment(),
        "ARCHIVE_SOURCE": "samples",
        "THUMBNAIL_STORE": "local",
        "LOCAL_STORE_DIR": str(unwritable),
        "PATH": "/usr/bin:/bin",
    }
    command = read_only_except(Path("/tmp"), [sys.executable, "-m", "thumbservice"])
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # it neither stopped nor started in time: never left running
            process.kill()
            await process.wait()
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("thumbservice: configuration error: LOCAL_STORE_DIR ")
    assert str(unwritable) in lines[0] and "Read-only file system" in lines[0]
    assert not unwritable.exists()
