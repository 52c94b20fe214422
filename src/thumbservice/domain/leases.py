"""One render across replicas: a lease per cache key, kept in the object store itself.

`SingleFlight` makes identical requests share one render inside one process. Replicas behind a
load balancer share one bucket but not their memory, so each of them would download and render
the same cold thumbnail. Before a render, a replica therefore claims the key's lease with a
conditional create (S3: `PutObject` with `If-None-Match: *`): exactly one replica wins and
renders; the others wait for the thumbnail to appear in the store and answer from it.

The lease (`LeaseRecord`, a small JSON object) names its owner and its time to live (TTL). The
owner rewrites it every third of the TTL while it works (each write is a new version, S3's
ETag), and removes it once the thumbnail is stored or the render has failed. A waiter looks, with
a growing pause between looks, at the thumbnail (there: done) and at the lease's version:

- The lease is gone and the thumbnail is not there: the owner failed. The waiter claims again
  (if it wins it renders, and meets the same error if the error is the frame's).
- The version has not changed for a whole TTL, measured on the waiter's own clock: the owner
  stopped (killed, partitioned, stalled). The waiter takes the lease over with a conditional
  overwrite on the version it saw (S3: `If-Match` on the ETag), so exactly one waiter takes it.
- The lease's recorded expiry is more than a TTL in the past on the waiter's clock: a leftover
  of an owner that died long before this waiter looked. It is taken over at once; the allowance
  of a whole TTL is for clock skew between replicas.

Only that last rule compares clocks of two machines; every other duration is measured by the
replica that acts on it. A store that fails during a claim or a wait does not fail the request:
the replica renders without a lease, as a single replica would.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from thumbservice.domain.errors import DeadlineExceeded, StoreUnavailable
from thumbservice.domain.ports import LeaseStore, NullTelemetry, Telemetry

DEFAULT_LEASE_TTL = 30.0
RENEWALS_PER_TTL = 3
FIRST_POLL = 0.05
MAX_POLL = 0.5
"""A waiter looks at the store after 50 ms, then twice as late each time, at most every half
second (or every quarter of the TTL, if that is shorter): what a waiting replica's callers wait
past the owner's is at most that, for two small requests (a HEAD and a GET) per look."""


@dataclass(frozen=True)
class LeaseRecord:
    """What a lease object holds.

    `expires_at` is on the owner's wall clock: a hint for a waiter that finds a leftover, never
    the only test of expiry (see the module docstring). `claim` is new for each claim, so no two
    claims ever write the same bytes (and so the same ETag).
    """

    owner: str
    claim: str
    ttl: float
    expires_at: float
    renewals: int = 0

    def encode(self) -> bytes:
        fields = {
            "owner": self.owner,
            "claim": self.claim,
            "ttl": self.ttl,
            "expires_at": round(self.expires_at, 3),
            "renewals": self.renewals,
        }
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, body: bytes) -> LeaseRecord | None:
        """The record, or None for a body this version cannot read (then only its version
        counts)."""
        try:
            data = json.loads(body)
            record = cls(
                owner=str(data["owner"]),
                claim=str(data["claim"]),
                ttl=float(data["ttl"]),
                expires_at=float(data["expires_at"]),
                renewals=int(data.get("renewals", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (math.isfinite(record.ttl) and record.ttl > 0 and math.isfinite(record.expires_at)):
            return None
        return record


class Lease:
    """A key's lease as this replica holds it: renewed in the background until `release()`.

    An unheld lease (the store could not be asked) renews and releases nothing: the replica
    renders on its own, as if it were alone.
    """

    def __init__(
        self,
        leases: RenderLeases,
        key: str,
        record: LeaseRecord | None = None,
        version: str | None = None,
    ) -> None:
        self._leases = leases
        self.key = key
        self.record = record
        self.version = version
        self.overtaken = False
        self._released = False
        self._stop = asyncio.Event()
        self._renewal: asyncio.Future[None] | None = None
        if record is not None and version is not None:
            self._renewal = asyncio.ensure_future(self._renew(record, version))

    @property
    def held(self) -> bool:
        return self._renewal is not None and not self.overtaken

    async def release(self) -> None:
        """Stop renewing and remove the lease, if it is still this replica's. Called on every
        way out of a render (stored, failed, cancelled); a second call does nothing."""
        if self._released or self._renewal is None:
            return
        self._released = True
        self._stop.set()
        # A renewal under way finishes first, so the version deleted below is the current one.
        await asyncio.wait([self._renewal])
        if self.overtaken or self.version is None:
            return
        try:
            await self._leases.store.delete(self.key, self.version)
        except Exception:  # StoreUnavailable, or a client already closed at shutdown
            # Left to expire; waiters find the thumbnail first in any case. A release must not
            # replace the error of the render it follows.
            self._leases.telemetry.store_failed("lease")

    async def _renew(self, record: LeaseRecord, version: str) -> None:
        leases = self._leases
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), record.ttl / RENEWALS_PER_TTL)
                return
            except TimeoutError:
                pass
            renewed = replace(
                record, expires_at=leases.wall_clock() + record.ttl, renewals=record.renewals + 1
            )
            try:
                new_version = await leases.store.replace(self.key, renewed.encode(), version)
            except Exception:  # StoreUnavailable, or a client already closed at shutdown
                leases.telemetry.store_failed("lease")
                continue  # the next renewal may get through; the TTL allows for two misses
            if new_version is None:
                # Another replica took it over, judging this one dead. Both render the same
                # thumbnail; this render goes on and its upload is as good as the other's.
                self.overtaken = True
                leases.telemetry.lease("overtaken")
                return
            record, version = renewed, new_version
            self.record, self.version = record, version


class RenderLeases:
    """Claims, waits for and takes over the leases of cache keys (see the module docstring)."""

    def __init__(
        self,
        store: LeaseStore,
        owner: str,
        ttl: float = DEFAULT_LEASE_TTL,
        *,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        first_poll: float = FIRST_POLL,
        max_poll: float = MAX_POLL,
    ) -> None:
        if not ttl > 0:
            raise ValueError("the lease TTL must be positive")
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.telemetry = telemetry or NullTelemetry()
        self.clock = clock
        self.wall_clock = wall_clock
        self.max_poll = min(max_poll, ttl / 4)
        self.first_poll = min(first_poll, self.max_poll)

    async def acquire(
        self,
        key: str,
        in_store: Callable[[], Awaitable[bool]],
        patience: float | None = None,
    ) -> Lease | None:
        """The lease of `key` for this replica to render under (won, taken over, or unheld if
        the store could not be asked), or None once the thumbnail is in the store, made by the
        replica that held it. A wait longer than `patience` seconds is DeadlineExceeded."""
        started = self.clock()
        waited = False
        try:
            while True:
                record = self._record()
                version = await self.store.create(key, record.encode())
                if version is not None:
                    self.telemetry.lease("won")
                    return Lease(self, key, record, version)
                if not waited:
                    waited = True
                    self.telemetry.lease("lost")
                outcome = await self._wait(key, in_store, started, patience)
                if outcome is True:
                    return None
                if isinstance(outcome, Lease):
                    return outcome
                # Released without a thumbnail: the owner failed, claim it again (after a
                # breath, so that a store answering inconsistently cannot spin this loop).
                self._check_patience(started, patience)
                await asyncio.sleep(self.first_poll)
        except StoreUnavailable:
            self.telemetry.lease("unavailable")
            return Lease(self, key)
        finally:
            if waited:
                self.telemetry.lease_waited(self.clock() - started)

    async def _wait(
        self,
        key: str,
        in_store: Callable[[], Awaitable[bool]],
        started: float,
        patience: float | None,
    ) -> Lease | bool:
        """Until the thumbnail is stored (True), the lease is gone without it (False), or this
        replica has taken an expired lease over (the Lease)."""
        seen: str | None = None
        seen_at = 0.0
        pause = self.first_poll
        while True:
            if await in_store():
                return True
            current = await self.store.read(key)
            if current is None:
                # Released: after the upload (look once more), or after a failure.
                return await in_store()
            body, version = current
            now = self.clock()
            if version != seen:
                seen, seen_at = version, now  # written since the last look: the owner is alive
            if self._expired(body, unchanged_for=now - seen_at):
                record = self._record()
                taken = await self.store.replace(key, record.encode(), version)
                if taken is not None:
                    self.telemetry.lease("taken_over")
                    return Lease(self, key, record, taken)
                seen = None  # renewed, released or taken by another waiter in between
            self._check_patience(started, patience)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_poll)

    def _check_patience(self, started: float, patience: float | None) -> None:
        if patience is not None and self.clock() - started >= patience:
            raise DeadlineExceeded(f"The thumbnail took longer than the {patience:g} s deadline")

    def _expired(self, body: bytes, unchanged_for: float) -> bool:
        record = LeaseRecord.decode(body)
        ttl = record.ttl if record is not None else self.ttl
        if unchanged_for >= ttl:
            return True
        return record is not None and self.wall_clock() > record.expires_at + ttl

    def _record(self) -> LeaseRecord:
        return LeaseRecord(
            owner=self.owner,
            claim=secrets.token_hex(8),
            ttl=self.ttl,
            expires_at=self.wall_clock() + self.ttl,
        )


@dataclass(frozen=True)
class ConditionalSupport:
    """What a store showed of conditional writes: `writes` (create and replace honour their
    conditions) is what leases need; without `deletes`, releasing a lease may remove one that
    another replica had just taken over (which costs at most one more render)."""

    writes: bool
    deletes: bool


async def probe_conditional_writes(store: LeaseStore, key: str) -> ConditionalSupport:
    """Try each condition on a scratch lease named `key`, then remove it. StoreUnavailable if
    the store cannot be reached."""
    first = await store.create(key, b'{"probe":1}')
    if first is None:
        return ConditionalSupport(writes=False, deletes=False)
    try:
        again = await store.create(key, b'{"probe":2}')
        stale = await store.replace(key, b'{"probe":3}', '"not-the-current-version"')
        current = await store.replace(key, b'{"probe":4}', first)
        writes = again is None and stale is None and current is not None
        deletes = False
        if writes:
            await store.delete(key, first)  # no longer the current version: must stay
            deletes = await store.read(key) is not None
        return ConditionalSupport(writes=writes, deletes=deletes)
    finally:
        left = await store.read(key)
        if left is not None:
            await store.delete(key, left[1])
