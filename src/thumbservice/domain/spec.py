"""What a caller asked for (a ThumbnailSpec), parsed and validated, and its cache key."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from thumbservice.domain.display import DEFAULT_DISPLAY, ColourMap, DisplayOptions, Stretch
from thumbservice.domain.errors import InvalidParameter
from thumbservice.domain.frames import FITS_SUFFIXES_LONGEST_FIRST
from thumbservice.domain.words import (  # noqa: F401 (the words are read from here too)
    FALSE_WORDS,
    TRUE_WORDS,
    parse_boolean,
)

# Bump when a change to rendering makes earlier thumbnails stale: it is part of every key.
RENDER_VERSION = 1

DEFAULT_SIZE = 200
DEFAULT_QUALITY = 80
DEFAULT_PERCENTILE = 99.5
DEFAULT_MAX_SIZE = 5000
MAX_LABEL_LENGTH = 2048
"""The longest label, in characters. A URL that works everywhere carries about 2,000; a label
this long of any script, percent-encoded (at most 12 bytes a character), still fits the
server's request line (`MAX_REQUEST_LINE` of the entrypoint)."""
MEDIAN_MIN_PERCENTILE = 50.0

_DIGITS = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,12})?|\.[0-9]{1,12}")
BASENAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}"
MAX_FRAME_ID = 2**63 - 1
_BASENAME = re.compile(BASENAME_PATTERN)


class ImageFormat(StrEnum):
    """How a thumbnail is encoded. JPEG is the original contract and the default."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"

    @property
    def extension(self) -> str:
        """The suffix of the stored object's key (JPEG keeps the original `.jpg`)."""
        return "jpg" if self is ImageFormat.JPEG else self.value

    @property
    def media_type(self) -> str:
        return f"image/{self.value}"

    @property
    def lossy(self) -> bool:
        """Whether `quality` changes the bytes (PNG is lossless and ignores it)."""
        return self is not ImageFormat.PNG

    @classmethod
    def of_key(cls, key: str) -> ImageFormat:
        """The format of a stored object, from its key's suffix."""
        suffix = key.rpartition(".")[2]
        for kind in cls:
            if kind.extension == suffix:
                return kind
        raise ValueError(f"not a thumbnail key: {key!r}")


DEFAULT_FORMAT = ImageFormat.JPEG
KEY_PATTERN = r"[0-9]{1,20}\.[0-9a-f]{32}\.(?:" + "|".join(f.extension for f in ImageFormat) + ")"
"""Every key `cache_key` makes, and nothing else: stores check names against it."""


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of 0-9 only: `str.isdigit` also takes '²' and '٣', which int()
    refuses or reads, and int() takes '1_000' and ' 7'."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class FrameRef:
    """How the caller named the frame: the archive id, or the basename."""

    frame_id: int | None = None
    basename: str | None = None

    @classmethod
    def parse(cls, segment: str) -> FrameRef:
        text = segment.strip()
        if is_ascii_digits(text):
            value = int(text)
            if not 0 < value <= MAX_FRAME_ID:
                raise InvalidParameter(f"Frame id {text} is out of range")
            return cls(frame_id=value)
        for suffix in FITS_SUFFIXES_LONGEST_FIRST:
            # A filename names the same frame as its basename.
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                break
        if not _BASENAME.fullmatch(text):
            raise InvalidParameter(
                "A frame is named by its numeric id or its basename "
                "(letters, digits, '.', '_', '+' and '-')"
            )
        return cls(basename=text)

    def __str__(self) -> str:
        return str(self.frame_id) if self.frame_id is not None else str(self.basename)


@dataclass(frozen=True)
class ThumbnailSpec:
    """What the caller asked for, validated. `image` only changes the answer, not the thumbnail."""

    frame: FrameRef
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    label: str = ""
    color: bool = False
    median: bool = False
    percentile: float = DEFAULT_PERCENTILE
    quality: int = DEFAULT_QUALITY
    image: bool = False
    format: ImageFormat = DEFAULT_FORMAT
    display: DisplayOptions = DEFAULT_DISPLAY
    """The stretch, interval and colour map (`domain.display`); the default is fits2image's."""

    @classmethod
    def from_query(
        cls, segment: str, query: Mapping[str, str], *, max_size: int = DEFAULT_MAX_SIZE
    ) -> ThumbnailSpec:
        """Parse the path segment and query; raise InvalidParameter naming what is wrong."""
        spec = cls(
            frame=FrameRef.parse(segment),
            width=_size(query, "width", max_size),
            height=_size(query, "height", max_size),
            label=_label(query.get("label")),
            color=_boolean(query, "color"),
            median=_boolean(query, "median"),
            percentile=_percentile(query.get("percentile")),
            quality=_integer(query, "quality", DEFAULT_QUALITY, 1, 100),
            image=_boolean(query, "image"),
            format=_format(query.get("format")),
            display=DisplayOptions.from_mapping(query),
        )
        _check_display(spec)
        if spec.median and spec.percentile <= MEDIAN_MIN_PERCENTILE:
            # Below the median every pixel of a median-subtracted frame is 0: the stretch would
            # divide by zero and draw the same picture whatever the percentile.
            raise InvalidParameter(
                f"percentile must be above {MEDIAN_MIN_PERCENTILE:g} with median=true, "
                f"got {spec.percentile:g}"
            )
        return spec

    def rendering_parameters(self) -> dict[str, object]:
        """Everything that changes the bytes, in a canonical form.

        A JPEG's parameters are exactly those of the original service, so its keys (and the
        thumbnails already stored under them) stay valid; other formats add theirs.
        """
        params: dict[str, object] = {
            "width": self.width,
            "height": self.height,
            "label": self.label,
            "color": self.color,
            "median": self.median,
            # percentile only matters with median; normalise so equal requests share a key
            "percentile": repr(self.percentile) if self.median else None,
            # quality only matters to a lossy format
            "quality": self.quality if self.format.lossy else None,
        }
        if self.format is not ImageFormat.JPEG:
            params["format"] = self.format.value
        if not self.display.is_default:
            # Only a choice that differs from fits2image's picture enters the key.
            params["display"] = self.display.canonical()
        return params

    def picture_options(self) -> dict[str, object]:
        """How the frame's values become pixels, in a canonical form: everything that changes
        the full-resolution 8-bit picture (not the size, label, format or quality, which are
        drawn from it). The key of a kept picture is made of this and the files' content
        (`domain/pictures.py`); a new display option belongs here.
        """
        options: dict[str, object] = {
            "color": self.color,
            "median": self.median,
            "percentile": repr(self.percentile) if self.median else None,
        }
        if not self.display.scaling_is_default:
            # The stretch and the interval; the colour map and inversion are drawn on each view.
            options["display"] = self.display.scaling_only().canonical()
        return options


def cache_key(frame_ids: tuple[int, ...], spec: ThumbnailSpec) -> str:
    """A deterministic object key: the frame id, then a hash of every rendering input.

    For a color composite the ids of all three source frames enter the hash, so a spec whose
    frames change gets a new thumbnail rather than a stale one.
    """
    if not frame_ids:
        raise ValueError("a cache key needs at least one frame id")
    params = spec.rendering_parameters()
    canonical = "&".join(f"{k}={params[k]}" for k in sorted(params))
    canonical += f"&frames={','.join(map(str, frame_ids))}&v={RENDER_VERSION}"
    digest = hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
    return f"{frame_ids[0]}.{digest}.{spec.format.extension}"


def _check_display(spec: ThumbnailSpec) -> None:
    """What the display options cannot be combined with."""
    display = spec.display
    if spec.median and display.stretch is not Stretch.FITS2IMAGE:
        raise InvalidParameter(
            f"median=true is fits2image's stretch and cannot be combined with "
            f"stretch={display.stretch}; leave out one of them"
        )
    if spec.color and display.cmap is not ColourMap.GREY:
        raise InvalidParameter(
            f"cmap={display.cmap} colours a black-and-white thumbnail; a color=true "
            "thumbnail takes its colours from the red, visual and blue frames"
        )
    if display.joint_interval and not spec.color:
        raise InvalidParameter(
            "joint_interval=true is for color=true: it takes one interval over the three channels"
        )


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        raise InvalidParameter(f"{name} must be a whole number written in digits, got {raw!r}")
    value = int(text)
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, got {value}")
    return value


def _size(query: Mapping[str, str], name: str, max_size: int) -> int:
    return _integer(query, name, DEFAULT_SIZE, 1, max_size)


def _boolean(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name)
    if raw is None or not raw.strip():
        return False
    value = parse_boolean(raw)
    if value is None:
        raise InvalidParameter(f"{name} must be true or false, got {raw!r}")
    return value


def _percentile(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_PERCENTILE
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise InvalidParameter(f"percentile must be a number written in digits, got {raw!r}")
    value = float(text)
    if not 0 < value <= 100:
        raise InvalidParameter(f"percentile must be in (0, 100], got {raw!r}")
    return value


def _format(raw: str | None) -> ImageFormat:
    if raw is None or not raw.strip():
        return DEFAULT_FORMAT
    try:
        return ImageFormat(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(f.value for f in ImageFormat)
        raise InvalidParameter(f"format must be one of {allowed}, got {raw!r}") from None


def _label(raw: str | None) -> str:
    if raw is None:
        return ""
    # Control characters draw as boxes and can break log lines; drop them.
    text = "".join(ch for ch in raw if ch.isprintable())
    if len(text) > MAX_LABEL_LENGTH:
        raise InvalidParameter(
            f"label must be at most {MAX_LABEL_LENGTH} characters, got {len(text)}"
        )
    return text
