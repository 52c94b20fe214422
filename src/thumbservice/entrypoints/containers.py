"""The composition root: the one place that picks concrete adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from dependency_injector import containers, providers

from thumbservice.adapters.archive.dev.sample_archive import SampleArchive, build_sample_archive
from thumbservice.adapters.archive.http import HttpArchive, open_session
from thumbservice.adapters.observability.metrics import PrometheusTelemetry
from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
from thumbservice.adapters.storage.local import LocalFileStore
from thumbservice.adapters.storage.s3 import S3Store, open_s3_client
from thumbservice.adapters.workspace import TempWorkspace
from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.frames import FrameRules, parse_color_filters
from thumbservice.domain.service import ThumbnailService
from thumbservice.entrypoints.config import Settings
from thumbservice.entrypoints.readiness import Readiness


async def _client_session() -> AsyncIterator[aiohttp.ClientSession]:
    session = await open_session()
    try:
        yield session
    finally:
        await session.close()


async def _s3_client(settings: Settings) -> AsyncIterator[Any]:
    async with open_s3_client(
        region=settings.aws_default_region,
        access_key=settings.aws_access_key_id,
        secret_key=settings.aws_secret_access_key,
        endpoint_url=settings.storage_url,
    ) as client:
        yield client


def _renderer(settings: Settings) -> Iterator[ProcessPoolRenderer]:
    renderer = ProcessPoolRenderer(
        settings.render_workers,
        max_pixels=settings.max_image_pixels,
        align_color=settings.color_alignment,
        render_timeout=settings.render_timeout,
        log_level=settings.log_level,
        log_format=settings.log_format,
    )
    renderer.start()
    try:
        yield renderer
    finally:
        renderer.close()


def _sample_archive(directory: Path) -> SampleArchive:
    build_sample_archive(directory)
    return SampleArchive(directory)


def _local_store(settings: Settings) -> LocalFileStore:
    return LocalFileStore(
        settings.local_store_dir, settings.base_url, settings.local_store_secret.encode()
    )


def _rules(settings: Settings) -> FrameRules:
    return FrameRules(
        required_keys=settings.required_frame_validation_keys,
        configuration_types=frozenset(settings.valid_configuration_types),
        color_configuration_types=frozenset(settings.valid_configuration_types_for_color_thumbs),
        color_filters=parse_color_filters(settings.color_filters),
    )


def _admission(settings: Settings, telemetry: PrometheusTelemetry) -> RenderAdmission:
    admission = RenderAdmission(
        settings.render_workers, settings.render_queue_depth, settings.retry_after
    )
    telemetry.watch(lambda: admission.rendering, lambda: admission.waiting)
    return admission


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(modules=[".handlers"])

    settings = providers.Dependency(instance_of=Settings)
    telemetry = providers.Singleton(PrometheusTelemetry)

    http_session = providers.Resource(_client_session)
    s3_client = providers.Resource(_s3_client, settings)

    archive = providers.Selector(
        settings.provided.archive_source,
        http=providers.Singleton(
            HttpArchive,
            http_session,
            settings.provided.archive_api_url,
            metadata_timeout=settings.provided.archive_timeout,
            list_timeout=settings.provided.archive_list_timeout,
            download_timeout=settings.provided.download_timeout,
            max_download_bytes=settings.provided.max_download_bytes,
        ),
        samples=providers.Singleton(_sample_archive, settings.provided.sample_archive_dir),
    )
    local_store = providers.Singleton(_local_store, settings)
    store = providers.Selector(
        settings.provided.store_kind,
        s3=providers.Singleton(S3Store, s3_client, settings.provided.aws_bucket),
        local=local_store,
    )
    renderer = providers.Resource(_renderer, settings)
    workspace = providers.Singleton(TempWorkspace, settings.provided.tmp_dir)
    rules = providers.Singleton(_rules, settings)
    admission = providers.Singleton(_admission, settings, telemetry)

    readiness = providers.Singleton(
        Readiness, archive, store, settings.provided.readiness_cache_seconds
    )

    service = providers.Singleton(
        ThumbnailService,
        archive=archive,
        renderer=renderer,
        store=store,
        workspace=workspace,
        rules=rules,
        admission=admission,
        telemetry=telemetry,
        url_expiry=settings.provided.url_expiry,
        deadline=settings.provided.request_deadline,
    )
