"""Prometheus metrics: the Telemetry port, plus what the HTTP layer records per request."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class PrometheusTelemetry:
    """One registry per app, so two apps in one process (tests) keep separate counts."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # memory, CPU and file descriptors of this process
        self.requests = Counter(
            "thumbservice_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "thumbservice_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "thumbservice_cache_lookups", "Thumbnail cache lookups", ["result"], registry=r
        )
        self.renders = Counter("thumbservice_renders", "Renders done", ["kind"], registry=r)
        self.render_seconds = Histogram(
            "thumbservice_render_duration_seconds",
            "Time spent rendering one thumbnail",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.downloaded_bytes = Counter(
            "thumbservice_downloaded_bytes", "Bytes of FITS downloaded", registry=r
        )
        self.joins = Counter(
            "thumbservice_single_flight_joins",
            "Requests that shared a render already under way",
            registry=r,
        )
        self.store_failures = Counter(
            "thumbservice_store_failures", "Object store failures", ["operation"], registry=r
        )
        self.in_flight = Gauge("thumbservice_renders_in_flight", "Renders running now", registry=r)
        self.queue_depth = Gauge(
            "thumbservice_render_queue_depth",
            "Admitted jobs waiting (downloading or queued for a worker)",
            registry=r,
        )
        # Leases: one render across replicas.
        self.leases = Counter(
            "thumbservice_leases",
            "Lease claims by outcome: won, lost (waited for another replica), taken_over (an "
            "expired lease), overtaken (this replica's lease was taken over), unavailable "
            "(rendered without a lease)",
            ["outcome"],
            registry=r,
        )
        self.lease_wait = Histogram(
            "thumbservice_lease_wait_seconds",
            "Time a replica waited for the lease holder's thumbnail",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.leases_enabled = Gauge(
            "thumbservice_leases_enabled",
            "1 when renders are shared across replicas by leases, 0 for this process only",
            registry=r,
        )

        self.downloads_in_flight = Gauge(
            "thumbservice_downloads_in_flight",
            "Jobs downloading their frames (counted apart from the render queue)",
            registry=r,
        )
        self.scratch_full_count = Counter(
            "thumbservice_scratch_full",
            "Jobs refused because TMP_DIR had no space left (ENOSPC, EDQUOT)",
            registry=r,
        )
        self.connections_closed = Counter(
            "thumbservice_connections_closed",
            "Connections the service closed or refused: header_timeout (no request head in "
            "time), send_timeout (the client stopped reading), evicted (idle, closed to make "
            "room), over_capacity (answered 503)",
            ["reason"],
            registry=r,
        )

        # The frame cache: full-resolution pictures every view of a frame is drawn from.
        self.frame_cache = Counter(
            "thumbservice_frame_cache_lookups",
            "Views drawn from a kept picture (hit), or rendered from the files (miss)",
            ["result"],
            registry=r,
        )
        self.frame_cache_evictions = Counter(
            "thumbservice_frame_cache_evictions",
            "Pictures removed from the frame cache to make room (least recently used first)",
            registry=r,
        )
        self.frame_cache_bytes = Gauge(
            "thumbservice_frame_cache_bytes", "Bytes of pictures in the frame cache", registry=r
        )

    def watch_downloads(self, downloading: Callable[[], float]) -> None:
        self.downloads_in_flight.set_function(downloading)

    def watch(self, rendering: Callable[[], float], waiting: Callable[[], float]) -> None:
        self.in_flight.set_function(rendering)
        self.queue_depth.set_function(waiting)

    def cache_lookup(self, hit: bool) -> None:
        self.cache.labels("hit" if hit else "miss").inc()

    def single_flight_joined(self) -> None:
        self.joins.inc()

    def frame_cache_lookup(self, hit: bool) -> None:
        self.frame_cache.labels("hit" if hit else "miss").inc()

    def frame_cache_evicted(self, count: int) -> None:
        self.frame_cache_evictions.inc(count)

    def watch_frame_cache(self, bytes_in_use: Callable[[], float]) -> None:
        self.frame_cache_bytes.set_function(bytes_in_use)

    def downloaded(self, nbytes: int) -> None:
        self.downloaded_bytes.inc(nbytes)

    def rendered(self, seconds: float, color: bool) -> None:
        kind = "colour" if color else "bw"  # a published metric label: kept
        self.renders.labels(kind).inc()
        self.render_seconds.labels(kind).observe(seconds)

    def store_failed(self, operation: str) -> None:
        self.store_failures.labels(operation).inc()

    def lease(self, outcome: str) -> None:
        self.leases.labels(outcome).inc()

    def lease_waited(self, seconds: float) -> None:
        self.lease_wait.observe(seconds)

    def leases_in_use(self, enabled: bool) -> None:
        self.leases_enabled.set(1 if enabled else 0)

    def scratch_full(self) -> None:
        self.scratch_full_count.inc()

    def connection_closed(self, reason: str) -> None:
        self.connections_closed.labels(reason).inc()

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
