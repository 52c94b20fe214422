"""The composition root: the one place that picks concrete adapters, and the whole start-up.

Everything that has to happen before the first request, and be undone after the last, is a
resource here, started by `init_resources()` and stopped by `shutdown_resources()`:

- `http_session`: the session of the archive's API (only with `ARCHIVE_SOURCE=http`);
- `download_session`: the session of file downloads, which never shares a connection with
  calls that carry a caller's Authorization (only with `ARCHIVE_SOURCE=http`);
- `s3_store`: the one S3 client, with the bucket created if it is missing (only with S3);
- `renderer`: the render workers, started and warmed up in the background, and the frame
  cache they share (its directory emptied at start, removed at stop);
- `scratch`: scratch directories of dead processes removed at start, this one's at stop;
- `leases`: the store's conditional writes probed, for one render across replicas (or None:
  this process's single flight only);
- `service`: the use case, which at stop waits for the uploads still under way.

A resource whose adapter is not chosen yields None and opens nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from dependency_injector import containers, providers

from thumbservice.adapters.archive.coalescing import CoalescingArchive
from thumbservice.adapters.archive.http import HttpArchive, open_download_session, open_session
from thumbservice.adapters.archive.reuse import ReusingArchive
from thumbservice.adapters.leases.local import LocalLeaseStore
from thumbservice.adapters.leases.s3 import S3LeaseStore
from thumbservice.adapters.observability.logs import configure_logging
from thumbservice.adapters.observability.metrics import PrometheusTelemetry
from thumbservice.adapters.rendering.engine.memory import recommended_limit
from thumbservice.adapters.rendering.framecache import DIRECTORY_MARK, FrameCache
from thumbservice.adapters.rendering.pool import ProcessPoolRenderer
from thumbservice.adapters.storage.cached import CachedStore
from thumbservice.adapters.storage.local import LocalFileStore
from thumbservice.adapters.storage.s3 import S3Store, open_s3_store
from thumbservice.adapters.workspace import PREFIX as WORKSPACE_PREFIX
from thumbservice.adapters.workspace import TempWorkspace
from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.deepzoom import DeepZoomService
from thumbservice.domain.errors import StoreUnavailable
from thumbservice.domain.frames import FrameRules
from thumbservice.domain.leases import RenderLeases, probe_conditional_writes
from thumbservice.domain.ports import ArchiveGateway, FramePictures, LeaseStore
from thumbservice.domain.service import ThumbnailService
from thumbservice.entrypoints.readiness import Readiness
from thumbservice.entrypoints.settings import PLACEHOLDER, Settings

log = structlog.get_logger("thumbservice.startup")


async def _http_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession | None]:
    if settings.archive_source != "http":
        yield None
        return
    session = await open_session()
    try:
        yield session
    finally:
        await session.close()


async def _download_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession | None]:
    if settings.archive_source != "http":
        yield None
        return
    session = await open_download_session()
    try:
        yield session
    finally:
        await session.close()


async def _s3_store(settings: Settings) -> AsyncIterator[S3Store | None]:
    if settings.store_kind != "s3":
        yield None
        return
    async with open_s3_store(
        bucket=settings.aws_bucket,
        region=settings.aws_default_region,
        # The seed's placeholders mean "not given": botocore's own chain then finds credentials
        # (environment, instance role, web identity as on EKS, ~/.aws).
        access_key=_given(settings.aws_access_key_id),
        secret_key=_given(settings.aws_secret_access_key),
        endpoint_url=settings.storage_url,
        hot_timeout=settings.store_timeout,
        public_url=settings.storage_public_url,
    ) as store:
        yield store


async def _service(shutdown_timeout: float, **parts: Any) -> AsyncIterator[ThumbnailService]:
    service = ThumbnailService(**parts)
    try:
        yield service
    finally:
        # Thumbnails answered with image=true may still be on their way to the store.
        unfinished = await service.drain(shutdown_timeout)
        if unfinished:
            log.warning("uploads_unfinished_at_shutdown", count=unfinished)


def _frame_cache(settings: Settings, telemetry: PrometheusTelemetry) -> FrameCache | None:
    """The frame cache of this process (None with FRAME_CACHE_BYTES=0), in a directory of its
    own under FRAME_CACHE_DIR named as scratch directories are, so that a process starting
    later removes it if this one dies (`TempWorkspace.clean_stale`)."""
    if settings.frame_cache_bytes <= 0:
        return None
    parent = settings.frame_cache_dir or settings.tmp_dir
    name = f"{WORKSPACE_PREFIX}{os.getpid()}{DIRECTORY_MARK}{secrets.token_hex(4)}"
    directory = parent / name
    cache = FrameCache(
        directory, settings.frame_cache_bytes, on_evict=telemetry.frame_cache_evicted
    )
    telemetry.watch_frame_cache(lambda: cache.bytes_in_use)
    return cache


async def _renderer(
    settings: Settings, telemetry: PrometheusTelemetry
) -> AsyncIterator[ProcessPoolRenderer]:
    limit = settings.render_memory_limit
    cache = _frame_cache(settings, telemetry)
    if cache is not None:
        parent = cache.directory.parent
        removed = await asyncio.to_thread(TempWorkspace(parent).clean_stale)
        log.info(
            "frame_cache_ready",
            directory=str(cache.directory),
            max_bytes=cache.max_bytes,
            stale_removed=removed,
        )
    renderer = ProcessPoolRenderer(
        settings.render_workers,
        max_pixels=settings.max_image_pixels,
        align_color=settings.color_alignment,
        render_timeout=settings.render_timeout,
        log_level=settings.log_level,
        log_format=settings.log_format,
        renderer=settings.renderer,
        memory_limit=recommended_limit(settings.renderer) if limit is None else (limit or None),
        frame_cache=cache,
    )
    renderer.start()
    # Workers import astropy and fits2image while the app starts serving, not on the first job.
    warm = asyncio.create_task(renderer.warm())
    try:
        yield renderer
    finally:
        warm.cancel()
        with contextlib.suppress(BaseException):
            await warm
        await renderer.aclose()
        if cache is not None:
            await asyncio.to_thread(cache.remove_directory)


def _pictures(renderer: ProcessPoolRenderer) -> FramePictures | None:
    """The renderer as the FramePictures port when it keeps pictures."""
    return renderer if getattr(renderer, "frame_cache", None) is not None else None


async def _scratch(workspace: TempWorkspace) -> AsyncIterator[TempWorkspace]:
    removed = await asyncio.to_thread(workspace.clean_stale)
    log.info("scratch_ready", tmp_dir=str(workspace.tmp_dir), stale_removed=removed)
    try:
        yield workspace
    finally:
        await asyncio.to_thread(workspace.clean_own)


def _lease_store(settings: Settings, s3_store: S3Store | None) -> LeaseStore | None:
    """The LeaseStore of the chosen thumbnail store; None with LEASES=off."""
    if settings.lease_kind == "s3" and s3_store is not None:
        return S3LeaseStore(
            s3_store.hot_client, s3_store.bucket, settings.lease_prefix, settings.store_timeout
        )
    if settings.lease_kind == "local":
        return LocalLeaseStore(settings.local_store_dir / settings.lease_prefix.rstrip("/"))
    return None


async def _leases(
    settings: Settings, store: LeaseStore | None, telemetry: PrometheusTelemetry
) -> AsyncIterator[RenderLeases | None]:
    """Leases in the thumbnail store, if it honours conditional writes; else None, and the
    service keeps to single flight within this process."""
    telemetry.leases_in_use(False)
    if settings.lease_kind is None or store is None:
        log.info("leases_off", single_flight="per process")
        yield None
        return
    owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
    try:
        support = await probe_conditional_writes(store, f"probe-{secrets.token_hex(8)}")
    except StoreUnavailable:
        # Unknown until the store answers: leases stay on, and a claim the store cannot answer
        # renders without one.
        log.warning("leases_probe_failed", store=settings.lease_kind)
    else:
        if not support.writes:
            log.warning(
                "leases_unsupported",
                store=settings.lease_kind,
                reason="the store ignores If-None-Match / If-Match on PutObject",
                single_flight="per process",
            )
            yield None
            return
        if not support.deletes:
            log.warning(
                "leases_conditional_delete_unsupported",
                store=settings.lease_kind,
                effect="a released lease may remove one just taken over: one more render",
            )
    log.info(
        "leases_on",
        store=settings.lease_kind,
        prefix=settings.lease_prefix,
        ttl=settings.lease_ttl,
        owner=owner,
    )
    telemetry.leases_in_use(True)
    yield RenderLeases(store, owner, settings.lease_ttl, telemetry=telemetry)


async def _deepzoom(**parts: Any) -> AsyncIterator[DeepZoomService]:
    service = DeepZoomService(**parts)
    try:
        yield service
    finally:
        await service.close()


def _iiif_archive(archive: ArchiveGateway, seconds: float) -> ArchiveGateway:
    """The archive for the IIIF routes: answers reused per caller for `seconds` (0: never)."""
    return ReusingArchive(archive, seconds) if seconds > 0 else archive


def _given(credential: str) -> str | None:
    return None if credential in ("", PLACEHOLDER) else credential


def _sample_archive(settings: Settings) -> ArchiveGateway:
    # Imported here: the development archive (and its astropy-based generator) costs a second
    # of start-up that a service on a real archive does not pay.
    from thumbservice.adapters.archive.dev.sample_archive import SampleArchive

    _sample_frames(settings.sample_archive_dir)
    return SampleArchive(settings.sample_archive_dir)


def _sample_frames(directory: Path) -> list[dict[str, Any]]:
    from thumbservice.adapters.archive.dev.sample_archive import build_sample_archive

    return build_sample_archive(directory)


def _viewer_links(settings: Settings) -> list[tuple[str, str]]:
    """The viewer on each sample frame (`make run`); none for a real archive."""
    if settings.archive_source != "samples":
        return []
    return viewer_links(_sample_frames(settings.sample_archive_dir))


def viewer_links(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    links = []
    for record in records:
        label = f"{record['basename']} ({record.get('configuration_type')})"
        if str(record.get("public_date", "")) > "2090":
            label += ": proprietary, token sample-owner-token"
        links.append((label, f"/view/{record['id']}"))
        if record.get("primary_optical_element") == "V":
            links.append((f"{record['basename']} in colour", f"/view/{record['id']};color=true"))
    return links


def _local_store(settings: Settings) -> LocalFileStore:
    return LocalFileStore(
        settings.local_store_dir, settings.base_url, settings.local_store_secret.encode()
    )


def _rules(settings: Settings) -> FrameRules:
    return FrameRules(
        required_keys=settings.required_frame_validation_keys,
        configuration_types=frozenset(settings.valid_configuration_types),
        color_configuration_types=frozenset(settings.valid_configuration_types_for_color_thumbs),
        color_filters=settings.color_filters,
    )


def _admission(settings: Settings, telemetry: PrometheusTelemetry) -> RenderAdmission:
    admission = RenderAdmission(
        settings.render_workers,
        settings.render_queue_depth,
        settings.retry_after,
        max_downloads=settings.max_downloads,
    )
    telemetry.watch(lambda: admission.rendering, lambda: admission.waiting)
    telemetry.watch_downloads(lambda: admission.downloading)
    return admission


class Container(containers.DeclarativeContainer):
    """Built from `Settings`; wires the handlers on creation."""

    wiring_config = containers.WiringConfiguration(modules=[".handlers", ".iiif_handlers"])

    settings = providers.Dependency(instance_of=Settings)
    logs = providers.Callable(
        configure_logging, settings.provided.log_level, settings.provided.log_format
    )
    telemetry = providers.Singleton(PrometheusTelemetry)

    # ArchiveGateway
    http_session = providers.Resource(_http_session, settings)
    download_session = providers.Resource(_download_session, settings)
    sample_frames = providers.Callable(_sample_frames, settings.provided.sample_archive_dir)
    viewer_links = providers.Singleton(_viewer_links, settings)
    chosen_archive = providers.Selector(
        settings.provided.archive_source,
        http=providers.Singleton(
            HttpArchive,
            http_session,
            settings.provided.archive_api_url,
            download_session=download_session,
            metadata_timeout=settings.provided.archive_timeout,
            list_timeout=settings.provided.archive_list_timeout,
            download_timeout=settings.provided.download_timeout,
            max_download_bytes=settings.provided.max_download_bytes,
            max_answer_bytes=settings.provided.archive_max_answer_bytes,
        ),
        samples=providers.Singleton(_sample_archive, settings),
    )
    # One frame's lookups never take the whole connection pool (adapters/archive/coalescing.py).
    archive = providers.Singleton(
        CoalescingArchive,
        chosen_archive,
        per_frame=settings.provided.archive_calls_per_frame,
        patience=settings.provided.archive_timeout,
    )

    # ObjectStore; `signed_urls` is the store the app serves itself, if it is that kind.
    s3_store = providers.Resource(_s3_store, settings)
    local_store = providers.Singleton(_local_store, settings)
    chosen_store = providers.Selector(settings.provided.store_kind, s3=s3_store, local=local_store)
    store = providers.Singleton(
        CachedStore,
        chosen_store,
        existence_ttl=settings.provided.cache_existence_ttl,
        max_bytes=settings.provided.memory_cache_bytes,
    )
    signed_urls = providers.Selector(
        settings.provided.store_kind, s3=providers.Object(None), local=local_store
    )

    # ImageRenderer and scratch space
    renderer = providers.Resource(_renderer, settings, telemetry)
    pictures = providers.Callable(_pictures, renderer)
    workspace = providers.Singleton(
        TempWorkspace, settings.provided.tmp_dir, on_full=telemetry.provided.scratch_full
    )
    scratch = providers.Resource(_scratch, workspace)

    lease_store = providers.Singleton(_lease_store, settings, s3_store)
    leases = providers.Resource(_leases, settings, lease_store, telemetry)

    rules = providers.Singleton(_rules, settings)
    admission = providers.Singleton(_admission, settings, telemetry)
    readiness = providers.Singleton(
        Readiness,
        archive,
        store,
        settings.provided.readiness_cache_seconds,
        renderer=renderer,
        scratch=scratch,
    )

    service = providers.Resource(
        _service,
        shutdown_timeout=settings.provided.shutdown_timeout,
        archive=archive,
        renderer=renderer,
        store=store,
        workspace=scratch,
        rules=rules,
        admission=admission,
        telemetry=telemetry,
        url_expiry=settings.provided.url_expiry,
        deadline=settings.provided.request_deadline,
        leases=leases,
        pictures=pictures,
    )

    # Deep zoom (IIIF): the same archive, renderer, scratch space and admission as thumbnails.
    iiif_archive = providers.Singleton(
        _iiif_archive, archive, settings.provided.iiif_archive_reuse_seconds
    )
    deepzoom = providers.Resource(
        _deepzoom,
        archive=iiif_archive,
        renderer=renderer,
        workspace=scratch,
        rules=rules,
        admission=admission,
        telemetry=telemetry,
        deadline=settings.provided.request_deadline,
        linger=settings.provided.iiif_frame_linger_seconds,
        queue_depth=settings.provided.iiif_queue_depth,
        pictures=pictures,
    )
