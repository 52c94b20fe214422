"""The running app over HTTP, with the stand-in archive, moto's S3 server and real rendering."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.app_server import AppTestServer
from tests.support.archive_server import ArchiveStub, running_archive
from tests.support.frames import FrameSet, build_test_frames
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, create_bucket, free_port
from tests.support.service import running_service
from thumbservice.adapters.archive.dev.sample_archive import build_sample_archive
from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
from thumbservice.entrypoints.app import create_app
from thumbservice.entrypoints.containers import Container
from thumbservice.entrypoints.settings import Settings


@pytest.fixture(scope="session")
def test_frames(tmp_path_factory: pytest.TempPathFactory) -> FrameSet:
    return build_test_frames(tmp_path_factory.mktemp("frames"))


@pytest.fixture(scope="session")
def shared_renderer() -> Iterator[ProcessPoolRenderer]:
    """One warm process pool for the session: starting one per test would dominate the run."""
    renderer = ProcessPoolRenderer(2, max_pixels=64 * 1024 * 1024)
    renderer.start()
    yield renderer
    renderer.close()


@pytest.fixture
async def archive(test_frames: FrameSet) -> AsyncIterator[ArchiveStub]:
    async with running_archive(test_frames.directory) as stub:
        for name, record in test_frames.records.items():
            stub.add_frame(record, test_frames.paths[name], public=name != "private")
        yield stub


@pytest.fixture
async def bucket(s3_endpoint: str, bucket_name: str) -> str:
    await create_bucket(s3_endpoint, bucket_name)
    return bucket_name


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """TMP_DIR of the app under test; it must be empty once the test is over."""
    path = tmp_path / "scratch"
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], "temporary files were left behind"


@pytest.fixture
def settings(
    archive: ArchiveStub, bucket: str, s3_endpoint: str, scratch: Path, tmp_path: Path
) -> Settings:
    return Settings(
        local_store_dir=tmp_path / "store",
        archive_api_url=archive.root,
        tmp_dir=scratch,
        aws_bucket=bucket,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_default_region=REGION,
        storage_url=s3_endpoint,
        render_workers=2,
        archive_timeout=2.0,
        download_timeout=5.0,
        request_deadline=30.0,
    )


AppFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(
    shared_renderer: ProcessPoolRenderer, settings: Settings
) -> AsyncIterator[AppFactory]:
    clients: list[TestClient] = []

    async def make(shared: bool = True, **changes: Any) -> TestClient:
        container = Container(settings=settings.model_copy(update=changes))
        if shared:
            from dependency_injector import providers

            container.renderer.override(providers.Object(shared_renderer))
        client = TestClient(AppTestServer(create_app(container)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient:
    return await make_client()


@dataclass(frozen=True)
class SampleService:
    """The service as `make run` serves it (the sample archive, the local store), in its own
    process: what the browser and the schema-driven tests talk to."""

    url: str
    log: Path
    records: list[dict[str, Any]]

    def frame_id(self, *, private: bool = False, color: bool = False) -> int:
        """A sample frame: a public black-and-white one, the proprietary one, or a color one."""
        for record in self.records:
            if private and str(record.get("public_date", "")) > "2090":
                return int(record["id"])
            if color and record.get("primary_optical_element") == "V":
                return int(record["id"])
            if not private and not color and record.get("configuration_type") == "EXPOSE":
                return int(record["id"])
        raise LookupError("no such sample frame")


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The sample archive of `make run`, generated once for the session."""
    directory = tmp_path_factory.mktemp("sample-archive")
    return directory, build_sample_archive(directory)


@pytest.fixture(scope="session")
def sample_service(
    sample_archive: tuple[Path, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SampleService]:
    directory, records = sample_archive
    work = tmp_path_factory.mktemp("sample-service")
    port = free_port()
    env = {
        "ARCHIVE_SOURCE": "samples",
        "SAMPLE_ARCHIVE_DIR": str(directory),
        "THUMBNAIL_STORE": "local",
        "LOCAL_STORE_DIR": str(work / "store"),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TMP_DIR": str(work / "tmp"),
        "RENDER_WORKERS": "1",
    }
    log = work / "service.log"
    command = [sys.executable, "-m", "thumbservice"]
    with running_service(command, env, log, port) as url:
        yield SampleService(url, log, records)
