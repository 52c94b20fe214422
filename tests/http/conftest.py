"""The HTTP surface in milliseconds: the real app and container, with the ports' fakes in place.

No server but aiohttp's test server, no process pool, no S3: the container's archive, store,
renderer and scratch providers are overridden by the hand-written fakes, as the
dependency-injector examples do. The slow end-to-end suite keeps what only real adapters show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from dependency_injector import providers

from tests.support.app_server import AppTestServer
from tests.support.fakes import (
    FakeArchive,
    FakeLeaseStore,
    FakeRenderer,
    FakeStore,
    FakeWorkspace,
    record,
)
from thumbservice.entrypoints.app import create_app
from thumbservice.entrypoints.containers import Container
from thumbservice.entrypoints.settings import Settings

OWNER = "Token owner"


@dataclass
class Fakes:
    archive: FakeArchive = field(default_factory=FakeArchive)
    renderer: FakeRenderer = field(default_factory=FakeRenderer)
    store: FakeStore = field(default_factory=FakeStore)
    workspace: FakeWorkspace = field(default_factory=FakeWorkspace)
    lease_store: FakeLeaseStore = field(default_factory=FakeLeaseStore)


@pytest.fixture
def fakes() -> Fakes:
    made = Fakes()
    made.archive.add(record(101))
    made.archive.add(record(102, basename="twin"))
    made.archive.add(record(103, basename="twin"))
    made.archive.add(record(104, proposal_id="LCO2026B-999"), owner=OWNER)
    return made


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], fakes: Fakes, tmp_path: Path
) -> ClientFactory:
    """A client of the app; `real_store=True` keeps the container's own store (local files)."""

    async def make(real_store: bool = False, **settings: Any) -> TestClient:
        base: dict[str, Any] = {
            "archive_source": "samples",  # overridden below; opens no HTTP session
            "tmp_dir": tmp_path / "scratch",
            "local_store_dir": tmp_path / "store",
            "public_url": "http://testserver",
        }
        container = Container(settings=Settings(**{**base, **settings}))
        container.archive.override(providers.Object(fakes.archive))
        container.renderer.override(providers.Object(fakes.renderer))
        container.scratch.override(providers.Object(fakes.workspace))
        container.s3_store.override(providers.Object(fakes.store))  # never a real S3 client
        container.lease_store.override(providers.Object(fakes.lease_store))
        container.viewer_links.override(providers.Object([("frame 101", "/view/101")]))
        if not real_store:
            container.store.override(providers.Object(fakes.store))
        return await aiohttp_client(AppTestServer(create_app(container)))

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()
