"""Frames as the archive describes them, and the rules that decide what may be rendered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from thumbservice.domain.errors import ColorFramesNotFound, FrameNotEligible

FITS_SUFFIXES = (".fits", ".fits.fz")
# Longest first, so that `x.fits.fz` is matched by `.fits.fz`, not by nothing.
FITS_SUFFIXES_LONGEST_FIRST = tuple(sorted(FITS_SUFFIXES, key=len, reverse=True))

DEFAULT_REQUIRED_KEYS = ("configuration_type", "request_id", "filename")
DEFAULT_CONFIGURATION_TYPES = (
    "ARC", "BIAS", "BPM", "DARK", "DOUBLE", "EXPERIMENTAL", "EXPOSE", "GUIDE",
    "LAMPFLAT", "SKYFLAT", "SPECTRUM", "STANDARD", "TARGET", "TRAILED",
)  # fmt: skip
DEFAULT_COLOR_CONFIGURATION_TYPES = ("EXPOSE", "STANDARD")
DEFAULT_COLOR_FILTERS: Mapping[str, tuple[str, ...]] = {
    "red": ("R", "rp"),
    "visual": ("V",),
    "blue": ("B",),
}
COLOR_REDUCTION_LEVEL = 91


@dataclass(frozen=True)
class Frame:
    """One frame record of the archive. Any key of a real record may be missing or null."""

    id: int | None
    basename: str | None
    filename: str | None
    url: str | None
    proposal_id: str | None
    observing_request_id: int | None
    configuration_type: str | None
    primary_optical_element: str | None
    reduction_level: int | None
    record: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Frame:
        return cls(
            id=_as_int(record.get("id")),
            basename=_as_str(record.get("basename")),
            filename=_as_str(record.get("filename")),
            url=_as_str(record.get("url")),
            proposal_id=_as_str(record.get("proposal_id")),
            observing_request_id=_as_int(record.get("request_id")),
            configuration_type=_as_str(record.get("configuration_type")),
            primary_optical_element=_as_str(record.get("primary_optical_element")),
            reduction_level=_as_int(record.get("reduction_level")),
            record=dict(record),
        )

    @property
    def is_fits(self) -> bool:
        return bool(self.filename) and str(self.filename).endswith(FITS_SUFFIXES)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (text := value.strip()).isascii() and text.isdigit():
        return int(text)
    return None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text else None


@dataclass(frozen=True)
class FrameRules:
    """The configurable rules a frame must pass before it is rendered."""

    required_keys: tuple[str, ...] = DEFAULT_REQUIRED_KEYS
    configuration_types: frozenset[str] = frozenset(DEFAULT_CONFIGURATION_TYPES)
    color_configuration_types: frozenset[str] = frozenset(DEFAULT_COLOR_CONFIGURATION_TYPES)
    color_filters: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_COLOR_FILTERS)
    )

    def check(self, frame: Frame, *, color: bool) -> None:
        """Raise FrameNotEligible with a message for the first rule the frame breaks."""
        missing = [key for key in self.required_keys if frame.record.get(key) in (None, "")]
        if missing:
            raise FrameNotEligible(f"Frame is missing required keys: {', '.join(missing)}")
        if frame.id is None:
            raise FrameNotEligible("Frame record has no id")
        ctype = frame.configuration_type
        if ctype not in self.configuration_types:
            raise FrameNotEligible(f"Cannot generate thumbnail for configuration_type={ctype}")
        if color:
            if ctype not in self.color_configuration_types:
                raise FrameNotEligible(
                    f"Cannot generate color thumbnail for configuration_type={ctype}"
                )
            if frame.observing_request_id is None:
                raise FrameNotEligible("Cannot generate color thumbnail: frame has no request_id")
        if not frame.is_fits:
            raise FrameNotEligible(
                f"Cannot generate thumbnail for file {frame.filename}: "
                f"only {' and '.join(FITS_SUFFIXES)} files are supported"
            )
        if not frame.url:
            raise FrameNotEligible("Frame record has no download url")

    def pick_color_frames(self, frames: Iterable[Frame]) -> tuple[Frame, Frame, Frame]:
        """The first red, visual and blue FITS frame of a request (in the archive's order)."""
        chosen: dict[str, Frame] = {}
        for frame in frames:
            if frame.reduction_level not in (None, COLOR_REDUCTION_LEVEL):
                continue
            if not frame.is_fits or not frame.url or frame.id is None:
                continue
            for channel, filters in self.color_filters.items():
                if channel not in chosen and frame.primary_optical_element in filters:
                    chosen[channel] = frame
        missing = [c for c in ("red", "visual", "blue") if c not in chosen]
        if missing:
            raise ColorFramesNotFound("RVB frames not found (missing " + ", ".join(missing) + ")")
        return chosen["red"], chosen["visual"], chosen["blue"]


def parse_color_filters(text: str) -> dict[str, tuple[str, ...]]:
    """Parse `red=R,rp;visual=V;blue=B` into a channel -> filters mapping."""
    mapping: dict[str, tuple[str, ...]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        channel, sep, names = part.partition("=")
        channel = channel.strip().lower()
        filters = tuple(n.strip() for n in names.split(",") if n.strip())
        if not sep or channel not in ("red", "visual", "blue") or not filters:
            raise ValueError(
                f"bad color filter entry {part!r}; expected e.g. red=R,rp;visual=V;blue=B"
            )
        mapping[channel] = filters
    if set(mapping) != {"red", "visual", "blue"}:
        raise ValueError("color filters must name red, visual and blue")
    return mapping


def frame_ids(frames: Sequence[Frame]) -> tuple[int, ...]:
    return tuple(f.id for f in frames if f.id is not None)
