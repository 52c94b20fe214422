"""The store in front of the store: existence and bytes remembered, bounded, and let go."""

from __future__ import annotations

import pytest

from tests.support.fakes import FakeStore
from thumbservice.adapters.storage.cached import CachedStore
from thumbservice.domain.errors import StoreUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.heads = 0
        self.gets = 0

    async def exists(self, key: str) -> bool:
        self.heads += 1
        return await super().exists(key)

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inner() -> CountingStore:
    return CountingStore()


def cached(
    inner: CountingStore, clock: Clock, ttl: float = 60, max_bytes: int = 1000
) -> CachedStore:
    return CachedStore(inner, existence_ttl=ttl, max_bytes=max_bytes, max_keys=3, clock=clock)


async def test_a_key_shown_to_exist_costs_no_more_round_trips_until_the_ttl(
    inner: CountingStore, clock: Clock
) -> None:
    store = cached(inner, clock)
    await inner.put("k", b"x", "image/jpeg")
    assert await store.exists("k") and await store.exists("k")
    assert inner.heads == 1
    clock.now += 59
    assert await store.exists("k")
    assert inner.heads == 1
    clock.now += 1
    assert await store.exists("k")
    assert inner.heads == 2


async def test_a_missing_key_is_asked_every_time(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock)
    assert not await store.exists("k") and not await store.exists("k")
    assert inner.heads == 2


async def test_what_was_put_is_known_and_kept(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock)
    await store.put("k", b"jpeg", "image/jpeg")
    assert await store.exists("k")
    assert await store.get("k") == b"jpeg"
    assert (inner.heads, inner.gets) == (0, 0)


async def test_an_object_found_missing_is_forgotten(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock, max_bytes=0)  # nothing kept in memory
    await store.put("k", b"jpeg", "image/jpeg")
    del inner.objects["k"]  # the bucket's lifecycle removed it
    assert await store.exists("k")  # within the TTL: still believed
    assert await store.get("k") is None  # read: found missing
    assert not await store.exists("k")  # and no longer believed
    assert inner.heads == 1


async def test_bytes_are_bounded_least_recently_used_first_out(
    inner: CountingStore, clock: Clock
) -> None:
    store = cached(inner, clock, max_bytes=1000)
    for name in "abc":
        await store.put(name, bytes(240), "image/jpeg")
    await store.get("a")  # a is now the most recent
    await store.put("d", bytes(240), "image/jpeg")
    await store.put("e", bytes(240), "image/jpeg")
    assert store.held_bytes <= 1000
    inner.gets = 0
    assert await store.get("a") == bytes(240) and inner.gets == 0
    assert await store.get("b") == bytes(240) and inner.gets == 1  # evicted, read again


async def test_objects_over_a_quarter_of_the_budget_are_not_kept(
    inner: CountingStore, clock: Clock
) -> None:
    store = cached(inner, clock, max_bytes=1000)
    await store.put("big", bytes(251), "image/jpeg")
    assert store.held_bytes == 0
    assert await store.get("big") == bytes(251) and inner.gets == 1


async def test_known_keys_are_bounded(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock)
    for name in "abcd":
        await store.put(name, b"x", "image/jpeg")
    assert await store.exists("d") and inner.heads == 0
    assert await store.exists("a") and inner.heads == 1  # the oldest of 4 was let go


async def test_zero_ttl_remembers_nothing(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock, ttl=0)
    await store.put("k", b"x", "image/jpeg")
    assert await store.exists("k") and await store.exists("k")
    assert inner.heads == 2


async def test_failures_pass_through(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock)
    inner.down = True
    with pytest.raises(StoreUnavailable):
        await store.exists("k")
    with pytest.raises(StoreUnavailable):
        await store.put("k", b"x", "image/jpeg")


async def test_a_signed_url_is_reused_for_a_minute(inner: CountingStore, clock: Clock) -> None:
    store = cached(inner, clock)
    signed: list[str] = []

    async def sign(key: str, expires_in: int) -> str:
        signed.append(key)
        return f"https://s3.example/{key}?signed={len(signed)}&expires={expires_in}"

    inner.url_for = sign  # type: ignore[method-assign]
    first = await store.url_for("k", 604800)
    clock.now += 59
    assert await store.url_for("k", 604800) == first
    assert await store.url_for("k", 3600) != first  # another lifetime is another URL
    clock.now += 1
    assert await store.url_for("k", 604800) != first
    assert signed == ["k", "k", "k"]
