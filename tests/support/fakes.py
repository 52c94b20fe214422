"""Hand-written fakes of the ports: in memory, no I/O, with counters to assert on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from thumbservice.domain.errors import FrameNotFound, ScratchSpaceFull, StoreUnavailable
from thumbservice.domain.frames import Frame
from thumbservice.domain.iiif import ImageRequest, RenderedView, limits_for
from thumbservice.domain.spec import ThumbnailSpec


def record(frame_id: int = 11245132, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": frame_id,
        "basename": f"ogg0m404-kb82-20190321-{frame_id % 10000:04d}-e91",
        "filename": f"ogg0m404-kb82-20190321-{frame_id % 10000:04d}-e91.fits.fz",
        "url": f"https://files.example/{frame_id}.fits.fz?X-Amz-Signature=abc",
        "proposal_id": "LCOEPO2018B-002",
        "request_id": 1756835,
        "configuration_type": "EXPOSE",
        "primary_optical_element": "rp",
        "reduction_level": 91,
        "public_date": "2020-03-21T10:11:12.345000Z",
    }
    base.update(overrides)
    return base


class FakeArchive:
    def __init__(self, records: Sequence[Mapping[str, Any]] = ()) -> None:
        self.records = {r["id"]: dict(r) for r in records}
        self.private: dict[int, str] = {}  # frame id -> the only Authorization that sees it
        self.calls: list[tuple[str, object, str | None]] = []
        self.downloads: Counter[int] = Counter()
        self.download_delay = 0.0
        self.download_gate: asyncio.Event | None = None  # downloads wait on it until it is set
        self.fail_with: Exception | None = None

    def add(self, rec: Mapping[str, Any], *, owner: str | None = None) -> None:
        self.records[rec["id"]] = dict(rec)
        if owner is not None:
            self.private[rec["id"]] = owner

    def _visible(self, frame_id: int, authorization: str | None) -> bool:
        owner = self.private.get(frame_id)
        return owner is None or owner == authorization

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame:
        self.calls.append(("get_frame", frame_id, authorization))
        if self.fail_with is not None:
            raise self.fail_with
        if frame_id not in self.records or not self._visible(frame_id, authorization):
            raise FrameNotFound(f"Frame {frame_id} not found")
        return Frame.from_record(self.records[frame_id])

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]:
        self.calls.append(("find_by_basename", basename, authorization))
        return [
            Frame.from_record(r)
            for i, r in self.records.items()
            if r.get("basename") == basename and self._visible(i, authorization)
        ]

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        self.calls.append(("list_observing_request_frames", observing_request_id, authorization))
        return [
            Frame.from_record(r)
            for i, r in self.records.items()
            if r.get("request_id") == observing_request_id
            and r.get("reduction_level") == reduction_level
            and self._visible(i, authorization)
        ]

    async def download(self, frame: Frame, destination: Path) -> int:
        assert frame.id is not None
        self.downloads[frame.id] += 1
        if self.download_delay:
            await asyncio.sleep(self.download_delay)
        if self.download_gate is not None:
            await self.download_gate.wait()
        return 1000 + frame.id % 1000

    async def check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


class FakeRenderer:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], ThumbnailSpec]] = []
        self.gate: asyncio.Event | None = None
        self.fail_with: Exception | None = None
        self.failing: Exception | None = None  # what readiness hears from the renderer

    async def render(self, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path) -> bytes:
        self.calls.append((tuple(p.name for p in sources), spec))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return f"JPEG {spec.width}x{spec.height} of {len(sources)}".encode()

    async def check(self) -> None:
        if self.failing is not None:
            raise self.failing

    picture_size = (3000, 2000)
    view_calls = 0

    async def render_view(
        self,
        sources: Sequence[Path],
        spec: ThumbnailSpec,
        request: ImageRequest | None,
        workdir: Path,
        picture: str | None = None,
    ) -> RenderedView:
        """A `picture_size` picture's views, as text naming what was cut."""
        self.view_calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        width, height = self.picture_size
        if request is None:
            return RenderedView(width, height)
        view = request.resolve(width, height, limits_for(width, height))
        return RenderedView(width, height, f"VIEW {view.region} {view.size}".encode())


class FakePictures(FakeRenderer):
    """A renderer that keeps pictures (the FramePictures port) in a dict: a view of a kept
    picture is drawn from it; `refuse` makes it keep nothing (a full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[str, str] = {}  # picture key -> the sources it was rendered from
        self.keeps: list[str] = []
        self.draws: list[tuple[str, ThumbnailSpec]] = []
        self.refuse = False

    def holds(self, key: str) -> bool:
        return key in self.kept

    async def draw(self, key: str, spec: ThumbnailSpec) -> bytes | None:
        if key not in self.kept:
            return None
        self.draws.append((key, spec))
        return f"JPEG {spec.width}x{spec.height} of {self.kept[key]}".encode()

    async def render_and_keep(
        self, key: str, sources: Sequence[Path], spec: ThumbnailSpec, workdir: Path
    ) -> bytes:
        data = await self.render(sources, spec, workdir)
        self.keeps.append(key)
        if not self.refuse:
            self.kept[key] = str(len(sources))
        return data


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.down = False
        self.puts = 0
        self.put_gate: asyncio.Event | None = None  # when set, uploads wait for it

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store is down")

    async def exists(self, key: str) -> bool:
        self._check()
        return key in self.objects

    async def get(self, key: str) -> bytes | None:
        self._check()
        found = self.objects.get(key)
        return found[0] if found else None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self._check()
        self.puts += 1
        if self.put_gate is not None:
            await self.put_gate.wait()
            self._check()
        self.objects[key] = (data, content_type)

    async def url_for(self, key: str, expires_in: int) -> str:
        self._check()
        return f"https://store.example/{key}?expires_in={expires_in}"

    async def check(self) -> None:
        self._check()


class FakeLeaseStore:
    """Leases in a dict, with S3's conditions; one shared by several services plays replicas
    sharing a bucket. `conditional = False` plays a store that ignores the conditions."""

    def __init__(self) -> None:
        self.leases: dict[str, tuple[bytes, str]] = {}
        self.down = False
        self.conditional = True
        self.calls: Counter[str] = Counter()
        self._written = 0

    def _check(self, operation: str) -> None:
        self.calls[operation] += 1
        if self.down:
            raise StoreUnavailable("store is down")

    def _write(self, key: str, body: bytes) -> str:
        self._written += 1
        version = f'"v{self._written}"'
        self.leases[key] = (body, version)
        return version

    async def create(self, key: str, body: bytes) -> str | None:
        self._check("create")
        if self.conditional and key in self.leases:
            return None
        return self._write(key, body)

    async def replace(self, key: str, body: bytes, version: str) -> str | None:
        self._check("replace")
        current = self.leases.get(key)
        if self.conditional and (current is None or current[1] != version):
            return None
        return self._write(key, body)

    async def read(self, key: str) -> tuple[bytes, str] | None:
        self._check("read")
        return self.leases.get(key)

    async def delete(self, key: str, version: str) -> None:
        self._check("delete")
        current = self.leases.get(key)
        if current is not None and (current[1] == version or not self.conditional):
            del self.leases[key]


class FakeWorkspace:
    def __init__(self) -> None:
        self.open = 0
        self.opened = 0
        self.full = False

    async def check(self) -> None:
        if self.full:
            raise ScratchSpaceFull("The scratch space is full")

    @asynccontextmanager
    async def directory(self) -> AsyncIterator[Path]:
        self.open += 1
        self.opened += 1
        try:
            yield Path(f"/scratch/job-{self.opened}")
        finally:
            self.open -= 1


class RecordingTelemetry:
    def __init__(self) -> None:
        self.events: Counter[str] = Counter()

    def cache_lookup(self, hit: bool) -> None:
        self.events["hit" if hit else "miss"] += 1

    def single_flight_joined(self) -> None:
        self.events["join"] += 1

    def frame_cache_lookup(self, hit: bool) -> None:
        self.events["frame_hit" if hit else "frame_miss"] += 1

    def downloaded(self, nbytes: int) -> None:
        self.events["downloaded_bytes"] += nbytes

    def rendered(self, seconds: float, color: bool) -> None:
        self.events["render"] += 1

    def store_failed(self, operation: str) -> None:
        self.events[f"store_failed:{operation}"] += 1

    def lease(self, outcome: str) -> None:
        self.events[f"lease:{outcome}"] += 1

    def lease_waited(self, seconds: float) -> None:
        self.events["lease_waits"] += 1
