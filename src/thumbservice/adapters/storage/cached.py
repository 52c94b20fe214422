"""An ObjectStore in front of another: it remembers which keys exist and keeps recent thumbnails.

Cache hits dominate the traffic (clients poll the same frames), and each used to cost an S3
round trip: a HEAD for the JSON answer, a GET for `image=true`. In front of the real store:

- **Existence** of a key is remembered for `existence_ttl` seconds once the store has shown it
  (a HEAD that found it, a GET that read it, a PUT that wrote it), for at most `max_keys` keys,
  least recently used first out. A key the store later reports missing is forgotten at once and
  rendered again. The TTL is the longest a URL may be handed out for an object that the bucket's
  lifecycle has meanwhile removed: keep it well below the lifecycle's expiry.
- **Bytes** of recently written or read thumbnails are kept, at most `max_bytes` in all, least
  recently used first out, so a warm `image=true` costs no GET. Objects larger than a quarter of
  the budget are not kept.
- **URLs**: signing one is most of a warm JSON answer's CPU (botocore's presigning), so a URL is
  handed out again for `url_reuse` seconds (a minute, and never longer than `existence_ttl`):
  it stays valid for its whole lifetime less that minute at most, against the week it is
  signed for.

All of it rests on the bucket still holding what it held. A store that counts the times it
found its bucket gone (S3Store's `generation`: a store restarted empty, the bucket recreated)
makes the cache forget everything it believed at once, rather than hand out URLs to objects
that are no more for up to `existence_ttl`.

The permission check is not the store's business: the use case asks the archive on every request
before it asks the store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from thumbservice.domain.ports import ObjectStore

DEFAULT_MAX_KEYS = 100_000
DEFAULT_URL_REUSE = 60.0


class CachedStore:
    def __init__(
        self,
        inner: ObjectStore,
        *,
        existence_ttl: float,
        max_bytes: int,
        max_keys: int = DEFAULT_MAX_KEYS,
        url_reuse: float = DEFAULT_URL_REUSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.existence_ttl = existence_ttl
        self.max_bytes = max_bytes
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> when the store showed it
        self._bytes: OrderedDict[str, bytes] = OrderedDict()
        self._held = 0
        # A URL is only reused while the key's existence is: both rest on the same belief.
        self.url_reuse = min(url_reuse, existence_ttl)
        self._urls: OrderedDict[str, tuple[int, float, str]] = OrderedDict()
        self._bucket_generation = self._generation()

    @property
    def held_bytes(self) -> int:
        return self._held

    def _generation(self) -> int:
        return int(getattr(self.inner, "generation", 0))

    def _still_the_same_bucket(self) -> None:
        """Forget every belief if the store found its bucket gone since the last look."""
        generation = self._generation()
        if generation != self._bucket_generation:
            self._bucket_generation = generation
            self._seen.clear()
            self._urls.clear()
            self._bytes.clear()
            self._held = 0

    async def exists(self, key: str) -> bool:
        self._still_the_same_bucket()
        if self._known(key):
            return True
        found = await self.inner.exists(key)
        self._still_the_same_bucket()
        if found:
            self._remember(key)
        else:
            self._forget(key)
        return found

    async def get(self, key: str) -> bytes | None:
        self._still_the_same_bucket()
        data = self._bytes.get(key)
        if data is not None:
            self._bytes.move_to_end(key)
            return data
        data = await self.inner.get(key)
        self._still_the_same_bucket()
        if data is None:
            self._forget(key)
            return None
        self._remember(key)
        self._keep(key, data)
        return data

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.inner.put(key, data, content_type)
        self._still_the_same_bucket()
        self._remember(key)
        self._keep(key, data)

    async def url_for(self, key: str, expires_in: int) -> str:
        self._still_the_same_bucket()
        now = self.clock()
        signed = self._urls.get(key)
        if signed is not None and signed[0] == expires_in and now - signed[1] < self.url_reuse:
            return signed[2]
        url = await self.inner.url_for(key, expires_in)
        if self.url_reuse > 0:
            self._urls[key] = (expires_in, now, url)
            self._urls.move_to_end(key)
            while len(self._urls) > self.max_keys:
                self._urls.popitem(last=False)
        return url

    async def check(self) -> None:
        try:
            await self.inner.check()
        finally:
            self._still_the_same_bucket()

    def _known(self, key: str) -> bool:
        seen = self._seen.get(key)
        if seen is None:
            return False
        if self.clock() - seen >= self.existence_ttl:
            del self._seen[key]
            return False
        self._seen.move_to_end(key)
        return True

    def _remember(self, key: str) -> None:
        if self.existence_ttl <= 0 or self.max_keys <= 0:
            return
        self._seen[key] = self.clock()
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)

    def _forget(self, key: str) -> None:
        self._seen.pop(key, None)
        self._urls.pop(key, None)
        data = self._bytes.pop(key, None)
        if data is not None:
            self._held -= len(data)

    def _keep(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes // 4:
            return
        previous = self._bytes.pop(key, None)
        if previous is not None:
            self._held -= len(previous)
        self._bytes[key] = data
        self._held += len(data)
        while self._held > self.max_bytes:
            _, evicted = self._bytes.popitem(last=False)
            self._held -= len(evicted)
