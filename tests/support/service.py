"""The service as a real process (`python -m thumbservice`), configured only by its environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.support.s3 import free_port


@dataclass
class ServiceProcess:
    url: str
    process: asyncio.subprocess.Process
    log: Path
    server_pid: int = 0  # the server itself: `process` unless a launcher (unshare) runs it

    def terminate(self) -> None:
        """SIGTERM to the server (a launcher such as unshare ignores it, and waits)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.server_pid or self.process.pid, signal.SIGTERM)


Launcher = Callable[[list[str]], list[str]]


@contextlib.asynccontextmanager
async def service_process(
    env: dict[str, str],
    log: Path,
    launcher: Launcher | None = None,
    *,
    file_limit: int | None = None,
) -> AsyncIterator[ServiceProcess]:
    """The service on a free port; `launcher` wraps its command (in namespaces, say) and must
    run it as its only child, or as itself; `file_limit`: its RLIMIT_NOFILE (as `ulimit -n`
    would)."""
    port = free_port()
    full_env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    command = [sys.executable, "-m", "thumbservice"]
    if launcher is not None:
        command = launcher(command)

    def limit_files() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit))

    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=full_env,
            stdout=out,
            stderr=out,
            preexec_fn=limit_files if file_limit is not None else None,
        )
    service = ServiceProcess(f"http://127.0.0.1:{port}", process, log, process.pid)
    try:
        await _wait_until_up(service)
        if launcher is not None:
            (service.server_pid,) = _children(process.pid)
        yield service
    finally:
        if process.returncode is None:
            service.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in listing.read_text().split())
    return found


@contextlib.asynccontextmanager
async def service_processes(
    envs: Sequence[dict[str, str]], logs: Sequence[Path]
) -> AsyncIterator[list[ServiceProcess]]:
    """Several services (replicas), started together and stopped together."""
    managers = [service_process(env, log) for env, log in zip(envs, logs, strict=True)]
    entered = await asyncio.gather(*(m.__aenter__() for m in managers), return_exceptions=True)
    started = [
        m
        for m, outcome in zip(managers, entered, strict=True)
        if isinstance(outcome, ServiceProcess)
    ]
    try:
        for outcome in entered:
            if isinstance(outcome, BaseException):
                raise outcome
        yield [outcome for outcome in entered if isinstance(outcome, ServiceProcess)]
    finally:
        await asyncio.gather(*(m.__aexit__(None, None, None) for m in started))


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (render workers, multiprocessing's tracker)."""
    found: list[int] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        for listing in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(child) for child in listing.read_text().split()]
            except OSError:
                continue
            found.extend(children)
            parents.extend(children)
    return found


async def kill_hard(service: ServiceProcess) -> None:
    """SIGKILL the service, then the processes it had started, as a container runtime kills a
    whole pod: a parent killed alone leaves its render workers waiting for work forever."""
    below = descendants(service.process.pid)
    service.process.kill()
    await service.process.wait()
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _wait_until_up(service: ServiceProcess, patience: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + patience
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if service.process.returncode is not None:
                raise RuntimeError(f"the service exited: {service.log.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{service.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the service did not come up: {service.log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_service(
    command: list[str],
    env: dict[str, str],
    log: Path,
    port: int,
    patience: float = 120.0,
    cwd: Path | None = None,
) -> Iterator[str]:
    """The service started by `command` on `port`, for tests without an event loop of their
    own (a browser, schemathesis); its URL once /healthz answers. Stopped with SIGTERM."""
    full_env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )
    try:
        deadline = time.monotonic() + patience
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited: {log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
