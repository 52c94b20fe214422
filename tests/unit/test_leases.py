"""One render across replicas, with fakes: services sharing one store and one lease store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.support.fakes import (
    FakeArchive,
    FakeLeaseStore,
    FakeRenderer,
    FakeStore,
    FakeWorkspace,
    RecordingTelemetry,
    record,
)
from thumbservice.domain.concurrency import RenderAdmission
from thumbservice.domain.errors import DeadlineExceeded, FrameNotFound, UnreadableFrame
from thumbservice.domain.frames import FrameRules
from thumbservice.domain.leases import (
    LeaseRecord,
    RenderLeases,
    probe_conditional_writes,
)
from thumbservice.domain.service import ThumbnailService
from thumbservice.domain.spec import ThumbnailSpec

TOKEN = "Token owner"
TTL = 0.3


class Cluster:
    """Replicas: each its own service, renderer, flights and leases; one archive, one store."""

    def __init__(self, replicas: int = 2, ttl: float = TTL, deadline: float | None = 5.0):
        self.archive = FakeArchive([record(1)])
        self.store = FakeStore()
        self.lease_store = FakeLeaseStore()
        self.renderers = [FakeRenderer() for _ in range(replicas)]
        self.telemetry = [RecordingTelemetry() for _ in range(replicas)]
        self.services = [
            ThumbnailService(
                self.archive,
                renderer,
                self.store,
                FakeWorkspace(),
                FrameRules(),
                RenderAdmission(2, 8),
                telemetry=telemetry,
                deadline=deadline,
                leases=RenderLeases(
                    self.lease_store, f"replica-{i}", ttl, telemetry=telemetry, max_poll=0.05
                ),
            )
            for i, (renderer, telemetry) in enumerate(
                zip(self.renderers, self.telemetry, strict=True)
            )
        ]

    async def ask(self, replica: int, auth: str | None = None, **query: str):  # type: ignore[no-untyped-def]
        spec = ThumbnailSpec.from_query("1", {"width": "120", **query})
        return await self.services[replica].thumbnail(spec, auth)

    def renders(self) -> int:
        return sum(len(r.calls) for r in self.renderers)

    def count(self, event: str) -> int:
        return sum(t.events[event] for t in self.telemetry)


async def until(condition: Callable[[], object], patience: float = 2.0) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def stop_renewing(cluster: Cluster) -> None:
    """Replica 0 holds the lease: stop it renewing, as a killed process would."""
    assert cluster.lease_store.leases, "replica 0 holds no lease"
    for task in asyncio.all_tasks():
        if "_renew" in repr(task.get_coro()):
            task.cancel()


async def test_one_replica_renders_the_other_waits_and_answers_from_the_store() -> None:
    cluster = Cluster()
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0))
    await until(lambda: cluster.renderers[0].calls)
    waiter = asyncio.create_task(cluster.ask(1))
    await until(lambda: cluster.count("lease:lost") == 1)
    assert not waiter.done()
    cluster.renderers[0].gate.set()
    first, second = await asyncio.gather(owner, waiter)
    assert first.key == second.key and first.url and second.url
    assert cluster.renders() == 1 and cluster.archive.downloads[1] == 1
    assert cluster.telemetry[0].events["lease:won"] == 1
    assert cluster.telemetry[1].events["lease:lost"] == 1
    assert cluster.telemetry[1].events["lease_waits"] == 1
    assert cluster.lease_store.leases == {}, "the lease was not removed after use"


async def test_a_waiting_replica_answers_image_true_from_the_stored_object() -> None:
    cluster = Cluster()
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0, image="true"))
    await until(lambda: cluster.renderers[0].calls)
    waiter = asyncio.create_task(cluster.ask(1, image="true"))
    await until(lambda: cluster.count("lease:lost") == 1)
    cluster.renderers[0].gate.set()
    first, second = await asyncio.gather(owner, waiter)
    assert first.data == second.data == b"JPEG 120x200 of 1"
    assert cluster.renders() == 1


async def test_the_permission_check_comes_first_on_a_waiting_replica() -> None:
    cluster = Cluster()
    cluster.archive.add(record(1), owner=TOKEN)
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0, auth=TOKEN))
    await until(lambda: cluster.renderers[0].calls)
    with pytest.raises(FrameNotFound):
        await cluster.ask(1, auth="Token stranger")
    assert cluster.lease_store.calls["create"] == 1  # the stranger never claimed
    cluster.renderers[0].gate.set()
    await owner


async def test_an_owner_renews_its_lease_while_a_long_render_runs() -> None:
    cluster = Cluster(ttl=0.15)
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0))
    await until(lambda: cluster.renderers[0].calls)
    waiter = asyncio.create_task(cluster.ask(1))
    # Twelve renewals, one every third of the TTL: four TTLs during which only renewals kept
    # the waiter from taking the lease over.
    await until(lambda: cluster.lease_store.calls["replace"] >= 12, patience=30.0)
    assert not waiter.done()
    cluster.renderers[0].gate.set()
    await asyncio.gather(owner, waiter)
    assert cluster.renders() == 1
    assert cluster.count("lease:taken_over") == 0


async def test_a_dead_owners_lease_is_taken_over_after_its_ttl() -> None:
    cluster = Cluster(replicas=3)
    cluster.renderers[0].gate = asyncio.Event()  # replica 0 never finishes: it "died"
    owner = asyncio.create_task(cluster.ask(0))
    await until(lambda: cluster.renderers[0].calls)
    stop_renewing(cluster)
    started = time.monotonic()
    answers = await asyncio.gather(cluster.ask(1), cluster.ask(2))
    waited = time.monotonic() - started
    assert all(a.url for a in answers)
    assert waited >= TTL, "taken over before the lease expired"
    assert waited < TTL + 1.0
    # Exactly one of the two waiters took it over and rendered.
    assert cluster.count("lease:taken_over") == 1
    assert len(cluster.renderers[1].calls) + len(cluster.renderers[2].calls) == 1
    assert cluster.lease_store.leases == {}
    cluster.renderers[0].gate.set()  # the "dead" replica's render ends; nothing is left pending
    await owner


async def test_a_leftover_lease_long_expired_is_taken_over_at_once() -> None:
    cluster = Cluster(ttl=30)
    key = (await cluster.ask(0)).key
    cluster.store.objects.clear()  # the thumbnail is gone (a lifecycle rule) ...
    old = LeaseRecord("gone-replica", "c0ffee", 30, expires_at=time.time() - 3600)
    cluster.lease_store.leases[key] = (old.encode(), '"old"')  # ... a lease was left behind
    started = time.monotonic()
    assert (await cluster.ask(1)).url
    assert time.monotonic() - started < 1.0
    assert cluster.telemetry[1].events["lease:taken_over"] == 1


async def test_a_failed_render_releases_the_lease_and_a_waiter_tries_itself() -> None:
    cluster = Cluster()
    for renderer in cluster.renderers:
        renderer.fail_with = UnreadableFrame("not a FITS image")
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0))
    await until(lambda: cluster.renderers[0].calls)
    waiter = asyncio.create_task(cluster.ask(1))
    await until(lambda: cluster.count("lease:lost") == 1)
    cluster.renderers[0].gate.set()
    with pytest.raises(UnreadableFrame):
        await owner
    with pytest.raises(UnreadableFrame):
        await waiter  # it claimed after the release, rendered and met the same error
    assert cluster.telemetry[1].events["lease:won"] == 1
    assert cluster.lease_store.leases == {}


async def test_a_cancelled_render_releases_its_lease() -> None:
    cluster = Cluster()
    cluster.renderers[0].gate = asyncio.Event()
    spec = ThumbnailSpec.from_query("1", {})
    service = cluster.services[0]
    frame = await service.find_frame(spec.frame, None)
    flight = asyncio.create_task(
        service._render_across_replicas("1.key", (frame,), spec, leased=True)
    )
    await until(lambda: cluster.renderers[0].calls)
    assert cluster.lease_store.leases
    flight.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flight
    assert cluster.lease_store.leases == {}


async def test_a_waiter_gives_up_at_the_deadline_not_later() -> None:
    cluster = Cluster(deadline=0.4)
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0))  # keeps renewing, never finishes
    await until(lambda: cluster.renderers[0].calls)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await cluster.ask(1)
    assert time.monotonic() - started < 0.6
    await until(lambda: not cluster.services[1].flights)  # the wait behind it stopped too
    with pytest.raises(DeadlineExceeded):
        await owner  # its caller had the same deadline; the render itself goes on
    cluster.renderers[0].gate.set()
    await until(lambda: not cluster.services[0].flights and not cluster.lease_store.leases)


async def test_a_lease_store_that_fails_means_rendering_alone() -> None:
    cluster = Cluster()
    cluster.lease_store.down = True
    answer = await cluster.ask(0)
    assert answer.url and cluster.renders() == 1
    assert cluster.telemetry[0].events["lease:unavailable"] == 1


async def test_an_overtaken_owner_does_not_remove_the_new_holders_lease() -> None:
    cluster = Cluster(ttl=0.15)
    cluster.renderers[0].gate = asyncio.Event()
    owner = asyncio.create_task(cluster.ask(0))
    await until(lambda: cluster.renderers[0].calls)
    key = next(iter(cluster.lease_store.leases))
    stolen = LeaseRecord("replica-x", "beef", 30, expires_at=time.time() + 30)
    cluster.lease_store.leases[key] = (stolen.encode(), '"stolen"')
    await until(lambda: cluster.telemetry[0].events["lease:overtaken"] == 1)
    cluster.renderers[0].gate.set()
    await owner
    assert cluster.lease_store.leases[key] == (stolen.encode(), '"stolen"')


def test_a_lease_record_reads_back_and_garbage_reads_as_none() -> None:
    lease = LeaseRecord("host/1/ab", "12ab", 30.0, 1_800_000_000.5, renewals=2)
    assert LeaseRecord.decode(lease.encode()) == lease
    for body in (b"", b"[]", b"{}", b'{"owner":"a","claim":"b","ttl":-1,"expires_at":0}', b"\xff"):
        assert LeaseRecord.decode(body) is None


async def test_the_probe_tells_a_conditional_store_from_one_that_ignores_conditions() -> None:
    store = FakeLeaseStore()
    support = await probe_conditional_writes(store, "probe-1")
    assert support.writes and support.deletes
    assert store.leases == {}
    store.conditional = False
    support = await probe_conditional_writes(store, "probe-2")
    assert not support.writes
    assert store.leases == {}


async def test_a_release_that_fails_never_hides_the_renders_own_error() -> None:
    cluster = Cluster()
    cluster.renderers[0].fail_with = UnreadableFrame("not a FITS image")

    async def broken_delete(key: str, version: str) -> None:
        raise RuntimeError("client closed")

    cluster.lease_store.delete = broken_delete  # type: ignore[method-assign]
    with pytest.raises(UnreadableFrame):
        await cluster.ask(0)
    assert cluster.telemetry[0].events["store_failed:lease"] == 1
