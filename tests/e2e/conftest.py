"""The running app over HTTP, with the stand-in archive, moto's S3 server and real rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.app_server import AppTestServer
from tests.support.archive_server import ArchiveStub, running_archive
from tests.support.frames import FrameSet, build_test_frames
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, create_bucket
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
