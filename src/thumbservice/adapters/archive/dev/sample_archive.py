"""An embedded archive of a few generated frames, so `make run` works without a real archive.

`build_sample_archive` writes deterministic frames and a `frames.json` index once;
`SampleArchive` serves them through the `ArchiveGateway` port with the real archive's
permission rules, so the service behaves the same against it as against the real thing.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from thumbservice.adapters.archive.dev.frames import FrameSpec, frame_record, write_frame
from thumbservice.adapters.archive.dev.permissions import (
    INVALID_TOKEN,
    ProposalPermissions,
    UnknownToken,
)
from thumbservice.domain.errors import ArchiveRefused, ArchiveUnavailable, FrameNotFound
from thumbservice.domain.frames import Frame

LAYOUT_VERSION = 2  # bump whenever the sample frames change, so old builds are redone
INDEX_NAME = "frames.json"
URL_SCHEME = "sample:"
OWNER_TOKEN = "Token sample-owner-token"
PROPRIETARY_PROPOSAL = "LCO2026B-999"
PROPRIETARY_PUBLIC_DATE = "2099-01-01T00:00:00Z"
DEFAULT_TOKENS: Mapping[str, set[str]] = {OWNER_TOKEN: {PROPRIETARY_PROPOSAL}}
CHUNK_SIZE = 1024 * 1024


def _color_spec(
    basename: str, band: str, noise_seed: int, offset: tuple[float, float], rotation: float
) -> FrameSpec:
    """One frame of the color request: the same field through each filter, re-pointed a bit."""
    return FrameSpec(
        basename,
        width=2048,
        height=2048,
        filter=band,
        field_seed=7,
        noise_seed=noise_seed,
        offset=offset,
        rotation_deg=rotation,
        request_id=5002,
    )


def _sample_frames() -> list[tuple[int, FrameSpec, dict[str, object]]]:
    """The frames of the sample archive: (id, spec, record overrides)."""
    public_image = FrameSpec(
        "ogg1m001-fa16-20190321-0101-e91", width=2048, height=2048, request_id=5001, noise_seed=1
    )
    bias = FrameSpec(
        "ogg1m001-fa16-20190321-0105-e00",
        compressed=False,
        reduction_level=0,
        obstype="BIAS",
        object_name="N/A",
        exposure_time=0.0,
        stars=0,
        with_wcs=False,
        request_id=5003,
        noise_seed=5,
    )
    proprietary = FrameSpec(
        "ogg1m001-fa16-20260901-0042-e91",
        proposal_id=PROPRIETARY_PROPOSAL,
        request_id=5005,
        field_seed=11,
        noise_seed=6,
        extra_header={"L1PUBDAT": "2099-01-01T00:00:00.000"},
    )
    spectrum = FrameSpec(
        "ogg2m001-en06-20190321-0010-e91",
        width=2048,
        height=512,
        filter="air",
        obstype="SPECTRUM",
        object_name="HD 37903",
        request_id=5004,
        stars=20,
        with_wcs=False,
        noise_seed=7,
    )
    return [
        (1001, public_image, {}),
        (
            1002,
            _color_spec("ogg1m001-fa16-20190321-0102-e91", "rp", 2, (0.0, 0.0), 0.0),
            {"related_frames": [1003, 1004]},
        ),
        (
            1003,
            _color_spec("ogg1m001-fa16-20190321-0103-e91", "V", 3, (12.0, -7.0), 0.4),
            {"related_frames": [1002, 1004]},
        ),
        (
            1004,
            _color_spec("ogg1m001-fa16-20190321-0104-e91", "B", 4, (-9.0, 5.0), -0.3),
            {"related_frames": [1002, 1003]},
        ),
        (1005, bias, {}),
        (
            1006,
            proprietary,
            {
                "public_date": PROPRIETARY_PUBLIC_DATE,
                "observation_date": "2026-09-01T03:04:05.000000Z",
                "observation_day": "2026-09-01",
            },
        ),
        (1007, spectrum, {"instrument_id": "en06", "telescope_id": "2m0a"}),
    ]


SAMPLE_FRAME_IDS = tuple(frame_id for frame_id, _, _ in _sample_frames())
"""The ids of the sample frames, for tests that aim at them."""
COLOR_SAMPLE_FRAME_IDS = tuple(i for i, _, extra in _sample_frames() if "related_frames" in extra)
"""The red, visual and blue frames of the one colour request."""


def _record(frame_id: int, spec: FrameSpec, path: Path, overrides: dict[str, object]) -> dict:
    url = URL_SCHEME + spec.filename
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    record = frame_record(spec, frame_id, url, observation_id=frame_id * 10, **overrides)
    version = {
        "id": frame_id,
        "created": record["observation_date"],
        "key": md5[:16],
        "md5": md5,
        "extension": ".fits.fz" if spec.compressed else ".fits",
        "url": url,
    }
    record["version_set"] = [version]
    return record


def _load_index(directory: Path) -> list[dict] | None:
    """The records of an existing, current and complete archive, or None to rebuild it."""
    try:
        index = json.loads((directory / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("layout_version") != LAYOUT_VERSION:
        return None
    frames = index.get("frames")
    if not isinstance(frames, list) or not all(isinstance(r, dict) for r in frames):
        return None
    if not all((directory / str(r.get("filename"))).is_file() for r in frames):
        return None
    return frames


def build_sample_archive(directory: Path) -> list[dict]:
    """Generate the sample frames and their index once, then reuse them: startup stays fast."""
    existing = _load_index(directory)
    if existing is not None:
        return existing
    directory.mkdir(parents=True, exist_ok=True)
    records = []
    for frame_id, spec, overrides in _sample_frames():
        path = write_frame(spec, directory)
        records.append(_record(frame_id, spec, path, overrides))
    payload = json.dumps({"layout_version": LAYOUT_VERSION, "frames": records}, indent=1)
    # Written to a temporary file and renamed, so a crash never leaves a half-written index.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".frames-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(payload)
        os.replace(tmp, directory / INDEX_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return records


class SampleArchive:
    """The `ArchiveGateway` over a directory made by `build_sample_archive`.

    Permissions are the stand-in archives' one rule (`permissions.py`), so the service's
    authorization handling is exercised locally too.
    """

    def __init__(self, directory: Path, tokens: Mapping[str, set[str]] | None = None) -> None:
        self._directory = Path(directory)
        self._permissions = ProposalPermissions(DEFAULT_TOKENS if tokens is None else tokens)
        self._records: list[dict] | None = None

    def _all(self) -> list[dict]:
        """Load the index on first use: a missing archive fails a request, not construction."""
        if self._records is None:
            records = _load_index(self._directory)
            if records is None:
                raise ArchiveUnavailable("The sample archive is not built")
            self._records = records
        return self._records

    def _visible(self, authorization: str | None) -> list[Frame]:
        try:
            records = self._permissions.visible(self._all(), authorization)
        except UnknownToken:
            raise ArchiveRefused(INVALID_TOKEN, 401, {"detail": INVALID_TOKEN}) from None
        return [Frame.from_record(copy.deepcopy(r)) for r in records]

    async def get_frame(self, frame_id: int, authorization: str | None) -> Frame:
        for frame in self._visible(authorization):
            if frame.id == frame_id:
                return frame
        raise FrameNotFound(f"Frame {frame_id} not found")

    async def find_by_basename(self, basename: str, authorization: str | None) -> list[Frame]:
        return [f for f in self._visible(authorization) if f.basename == basename]

    async def list_observing_request_frames(
        self, observing_request_id: int, reduction_level: int, authorization: str | None
    ) -> list[Frame]:
        return [
            f
            for f in self._visible(authorization)
            if f.observing_request_id == observing_request_id
            and f.reduction_level == reduction_level
        ]

    def _source(self, frame: Frame) -> Path:
        """The file a `sample:` url names; anything that could escape the directory is refused."""
        url = frame.url or ""
        name = url[len(URL_SCHEME) :] if url.startswith(URL_SCHEME) else ""
        if not name or "/" in name or "\\" in name or ".." in name:
            raise FrameNotFound(f"Frame {frame.id} has no file in the sample archive")
        path = self._directory / name
        if not path.is_file():
            raise FrameNotFound(f"Frame {frame.id} has no file in the sample archive")
        return path

    async def download(self, frame: Frame, destination: Path) -> int:
        """Copy in chunks off the event loop; a partial file never survives a failure."""
        source = self._source(frame)
        written = 0
        try:
            src = await asyncio.to_thread(source.open, "rb")
            try:
                dst = await asyncio.to_thread(destination.open, "wb")
                try:
                    while chunk := await asyncio.to_thread(src.read, CHUNK_SIZE):
                        await asyncio.to_thread(dst.write, chunk)
                        written += len(chunk)
                finally:
                    await asyncio.to_thread(dst.close)
            finally:
                await asyncio.to_thread(src.close)
        except BaseException as exc:
            # Synchronous on purpose: a second cancellation must not skip the clean-up.
            destination.unlink(missing_ok=True)  # noqa: ASYNC240
            if isinstance(exc, OSError):
                raise ArchiveUnavailable(
                    f"Could not copy frame {frame.id} from the sample archive"
                ) from exc
            raise
        return written

    async def check(self) -> None:
        if not self._directory.is_dir() or not (self._directory / INDEX_NAME).is_file():
            raise ArchiveUnavailable("The sample archive is not built")
