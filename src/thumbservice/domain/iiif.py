"""The IIIF Image API 3.0 (level 2) in the words of the domain: a URL's pieces parsed into a
canonical request, the identifier's display options, and the tile arithmetic of info.json.

Pure functions and values: no framework, no image. Parsing happens in two steps, as the API's
order of operations has it. `parse_image_request` checks the syntax of region, size, rotation,
quality and format (a 400 whatever the frame, so nothing is learnt of a frame before the
permission check); `ImageRequest.resolve` then applies it to the picture's dimensions, giving
the pixel box to cut, the size to draw it at and what to do to it (`ImageView`), or an error:
`InvalidParameter` (400) for a region or size the picture cannot give. An arbitrary rotation
is refused with a 400 at the first step, as the API asks of an unsupported rotation.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from thumbservice.domain.display import COLOUR_MAP_ALIASES, Stretch
from thumbservice.domain.display import NAMES as DISPLAY_NAMES
from thumbservice.domain.errors import FrameNotFound, InvalidParameter
from thumbservice.domain.spec import FrameRef, ImageFormat, ThumbnailSpec
from thumbservice.domain.words import parse_boolean

CONTEXT = "http://iiif.io/api/image/3/context.json"
PROTOCOL = "http://iiif.io/api/image"
PROFILE = "level2"
MEDIA_TYPE = f'application/ld+json;profile="{CONTEXT}"'
TILE_SIZE = 512
"""Tiles are 512 px squares at every scale factor (OpenSeadragon's own default)."""

THUMBNAIL_ONLY_PARAMETERS = frozenset({"width", "height", "label", "format", "quality", "image"})
"""Query parameters of the thumbnail route that an IIIF URL states otherwise (size, format,
quality) or that do not draw the frame (label, image): refused as identifier options."""

IDENTIFIER_OPTIONS = frozenset({"color", "median", "percentile", *DISPLAY_NAMES})
"""The options an identifier may carry: the thumbnail route's picture options and display
options, by their query parameters' names."""

MAX_UPSCALE_PERCENT = 1e6
"""A `pct:` size above this is refused at once (the limits refuse far less already): a number
of hundreds of digits would overflow the arithmetic after the picture is drawn."""

_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_INT = r"[0-9]{1,9}"
_PIXELS = re.compile(rf"({_INT}),({_INT}),({_INT}),({_INT})")
_PERCENT_REGION = re.compile(rf"pct:({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER})")
_SIZE_W = re.compile(rf"({_INT}),")
_SIZE_H = re.compile(rf",({_INT})")
_SIZE_WH = re.compile(rf"({_INT}),({_INT})")
_SIZE_FIT = re.compile(rf"!({_INT}),({_INT})")
_SIZE_PCT = re.compile(rf"pct:({_NUMBER})")
_ROTATION = re.compile(rf"(!?)({_NUMBER})")
_OPTION_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")
MAX_OPTION_VALUE = 64


class Quality(StrEnum):
    DEFAULT = "default"
    COLOR = "color"
    GRAY = "gray"
    BITONAL = "bitonal"


class OutputFormat(StrEnum):
    """The formats of the IIIF URL (its extensions), and the encoder each one uses."""

    JPG = "jpg"
    PNG = "png"
    WEBP = "webp"

    @property
    def image_format(self) -> ImageFormat:
        return {"jpg": ImageFormat.JPEG, "png": ImageFormat.PNG, "webp": ImageFormat.WEBP}[
            self.value
        ]

    @property
    def media_type(self) -> str:
        return self.image_format.media_type


@dataclass(frozen=True)
class Region:
    """`full`, `square`, `x,y,w,h` (pixels) or `pct:x,y,w,h`."""

    kind: str
    values: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @classmethod
    def parse(cls, text: str) -> Region:
        if text in ("full", "square"):
            return cls(text)
        if match := _PIXELS.fullmatch(text):
            x, y, w, h = (float(v) for v in match.groups())
            if w == 0 or h == 0:
                raise InvalidParameter(f"The region {text!r} has no width or height")
            return cls("pixels", (x, y, w, h))
        if match := _PERCENT_REGION.fullmatch(text):
            x, y, w, h = (float(v) for v in match.groups())
            if w == 0 or h == 0:
                raise InvalidParameter(f"The region {text!r} has no width or height")
            if x >= 100 or y >= 100:
                raise InvalidParameter(f"The region {_shown(text)} starts outside the image")
            # A width or height past the edge is cropped to it: past 100 % changes nothing,
            # and a number of hundreds of digits would not survive the arithmetic.
            return cls("percent", (x, y, min(w, 100.0), min(h, 100.0)))
        raise InvalidParameter(
            f"The region {_shown(text)} is not full, square, x,y,w,h or pct:x,y,w,h"
        )

    def box(self, width: int, height: int) -> Box:
        """The pixels of a `width` x `height` picture this region covers, cropped to it."""
        if self.kind == "full":
            return Box(0, 0, width, height)
        if self.kind == "square":
            side = min(width, height)
            return Box((width - side) // 2, (height - side) // 2, side, side)
        x, y, w, h = self.values
        if self.kind == "percent":
            left, top = round(x * width / 100), round(y * height / 100)
            right, bottom = round((x + w) * width / 100), round((y + h) * height / 100)
        else:
            left, top, right, bottom = int(x), int(y), int(x + w), int(y + h)
        right, bottom = min(right, width), min(bottom, height)
        if left >= width or top >= height or right <= left or bottom <= top:
            raise InvalidParameter(
                f"The region lies outside the {width}x{height} image or is empty there"
            )
        return Box(left, top, right - left, bottom - top)


@dataclass(frozen=True)
class Size:
    """`max`, `w,`, `,h`, `pct:n`, `w,h` or `!w,h`, each with or without `^` (upscaling)."""

    kind: str
    upscale: bool = False
    width: int = 0
    height: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Size:
        upscale = text.startswith("^")
        body = text[1:] if upscale else text
        if body == "max":
            return cls("max", upscale)
        if match := _SIZE_W.fullmatch(body):
            return cls._checked("w", upscale, width=int(match[1]))
        if match := _SIZE_H.fullmatch(body):
            return cls._checked("h", upscale, height=int(match[1]))
        if match := _SIZE_WH.fullmatch(body):
            return cls._checked("wh", upscale, width=int(match[1]), height=int(match[2]))
        if match := _SIZE_FIT.fullmatch(body):
            return cls._checked("fit", upscale, width=int(match[1]), height=int(match[2]))
        if match := _SIZE_PCT.fullmatch(body):
            percent = float(match[1])
            if percent > MAX_UPSCALE_PERCENT:
                raise InvalidParameter(f"The size {_shown(text)} is beyond any picture drawn here")
            if percent <= 0 or (percent > 100 and not upscale):
                raise InvalidParameter(
                    f"The size {text!r} must be above 0 % and, without ^, at most 100 %"
                )
            return cls("pct", upscale, percent=percent)
        raise InvalidParameter(
            f"The size {_shown(text)} is not max, w,, ,h, pct:n, w,h or !w,h (with ^ to upscale)"
        )

    @classmethod
    def _checked(cls, kind: str, upscale: bool, *, width: int = 0, height: int = 0) -> Size:
        if (kind in ("w", "wh", "fit") and width == 0) or (
            kind in ("h", "wh", "fit") and not height
        ):
            raise InvalidParameter("A size of 0 pixels draws nothing")
        return cls(kind, upscale, width=width, height=height)

    def dimensions(self, region: Box, limits: Limits) -> tuple[int, int]:
        """The size the region is drawn at; 400 for more than the region without `^`, or for
        more than the limits allow with it."""
        rw, rh = region.width, region.height
        if self.kind == "max":
            scale = limits.scale_within(rw, rh)
            if not self.upscale:
                scale = min(scale, 1.0)
            width, height = _scaled(rw, rh, scale)
        elif self.kind == "w":
            width, height = self.width, max(1, round(rh * self.width / rw))
        elif self.kind == "h":
            width, height = max(1, round(rw * self.height / rh)), self.height
        elif self.kind == "wh":
            width, height = self.width, self.height
        elif self.kind == "fit":
            scale = min(self.width / rw, self.height / rh)
            width, height = _scaled(rw, rh, scale)
            width, height = min(width, self.width), min(height, self.height)
        else:
            width, height = _scaled(rw, rh, self.percent / 100)
        if width < 1 or height < 1:
            raise InvalidParameter("The size asked for rounds to 0 pixels")
        if not self.upscale and (width > rw or height > rh):
            raise InvalidParameter(
                f"The size {width}x{height} is larger than the {rw}x{rh} region: "
                "upscaling needs the ^ form"
            )
        if not limits.allows(width, height):
            raise InvalidParameter(
                f"The size {width}x{height} is beyond the largest this service draws "
                f"({limits.max_width}x{limits.max_height})"
            )
        return width, height


@dataclass(frozen=True)
class Limits:
    """The largest picture drawn (info.json's `maxWidth`, `maxHeight`, `maxArea`)."""

    max_width: int
    max_height: int
    max_area: int

    def allows(self, width: int, height: int) -> bool:
        return (
            width <= self.max_width
            and height <= self.max_height
            and width * height <= (self.max_area)
        )

    def scale_within(self, width: int, height: int) -> float:
        """The largest scale at which `width` x `height` stays within the limits."""
        scale = min(self.max_width / width, self.max_height / height)
        return min(scale, math.sqrt(self.max_area / (width * height)))


@dataclass(frozen=True)
class Box:
    """A rectangle of pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class ImageRequest:
    """The five path pieces of an image request, checked, not yet applied to a picture."""

    region: Region
    size: Size
    mirror: bool
    rotation: int
    quality: Quality
    format: OutputFormat

    def resolve(self, width: int, height: int, limits: Limits) -> ImageView:
        """The request applied to a `width` x `height` picture."""
        box = self.region.box(width, height)
        size = self.size.dimensions(box, limits)
        return ImageView(box, size, self.mirror, self.rotation, self.quality, self.format)


@dataclass(frozen=True)
class ImageView:
    """What to cut from the full-resolution picture and how to draw it: the region's box, the
    size to scale it to, mirrored first (left-right) if asked, then turned clockwise by
    `rotation` degrees, in a quality, encoded in a format."""

    region: Box
    size: tuple[int, int]
    mirror: bool = False
    rotation: int = 0
    quality: Quality = Quality.DEFAULT
    format: OutputFormat = OutputFormat.JPG

    @property
    def output_size(self) -> tuple[int, int]:
        """The image's size once turned."""
        width, height = self.size
        return (height, width) if self.rotation in (90, 270) else (width, height)


@dataclass(frozen=True)
class RenderedView:
    """What a renderer answers for a view: the full picture's size, and the encoded view
    (empty when only the size was asked for)."""

    width: int
    height: int
    data: bytes = b""
    kept_bytes: int = 0
    """Bytes of a picture this view put into the renderer's frame cache (0: none)."""


def parse_image_request(region: str, size: str, rotation: str, quality_format: str) -> ImageRequest:
    """`{region}/{size}/{rotation}/{quality}.{format}` checked; InvalidParameter (400) naming
    the piece at fault (an arbitrary rotation included: the API's answer to a rotation it
    does not support is a 400)."""
    parsed_region = Region.parse(region)
    parsed_size = Size.parse(size)
    match = _ROTATION.fullmatch(rotation)
    if match is None:
        raise InvalidParameter(f"The rotation {_shown(rotation)} is not a number of degrees")
    degrees = float(match[2])
    if degrees > 360:
        raise InvalidParameter(f"The rotation {rotation!r} is above 360 degrees")
    if degrees % 90:
        raise InvalidParameter(
            f"The rotation {rotation!r} is not supported: only 0, 90, 180 and 270 degrees are drawn"
        )
    quality_text, dot, format_text = quality_format.rpartition(".")
    if not dot:
        raise InvalidParameter(
            f"{_shown(quality_format)} is not quality.format (for example default.jpg)"
        )
    try:
        quality = Quality(quality_text)
    except ValueError:
        allowed = ", ".join(q.value for q in Quality)
        raise InvalidParameter(
            f"The quality {_shown(quality_text)} is not one of {allowed}"
        ) from None
    try:
        output = OutputFormat(format_text)
    except ValueError:
        allowed = ", ".join(f.value for f in OutputFormat)
        raise InvalidParameter(
            f"The format {_shown(format_text)} is not one of {allowed}"
        ) from None
    return ImageRequest(
        parsed_region, parsed_size, bool(match[1]), int(degrees) % 360, quality, output
    )


# ---- identifiers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identifier:
    """A frame and its display options: `1003;color=true;stretch=linear`.

    `options` are query parameters of the thumbnail route, by name, as the canonical identifier
    writes them (sorted, with those that change nothing dropped); `spec` is the thumbnail
    route's own parse of them, so the picture is drawn exactly as that route draws it.
    """

    frame: FrameRef
    options: tuple[tuple[str, str], ...]
    spec: ThumbnailSpec

    @property
    def canonical(self) -> str:
        return ";".join([str(self.frame), *(f"{name}={value}" for name, value in self.options)])


@functools.lru_cache(maxsize=4096)
def parse_identifier(text: str) -> Identifier:
    """`frame[;name=value...]`, percent-encoded or not.

    A frame name that cannot be one is a 404 (IIIF: an unknown identifier); an option the
    thumbnail route refuses is that route's 400, with its message. Remembered (a viewer asks
    for dozens of tiles of one identifier; the canonical form parses the options again for
    each one); refusals are not.
    """
    head, *pieces = text.split(";")
    try:
        frame = FrameRef.parse(head)
    except InvalidParameter:
        raise FrameNotFound(f"No frame is named {_shown(head)}") from None
    given: dict[str, str] = {}
    for piece in pieces:
        name, equals, value = piece.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if not equals or not _OPTION_NAME.fullmatch(name) or len(value) > MAX_OPTION_VALUE:
            raise InvalidParameter(
                f"An identifier's options are name=value pairs after ';', got {_shown(piece)}"
            )
        if name in THUMBNAIL_ONLY_PARAMETERS:
            raise InvalidParameter(
                f"{name} is not a display option: the image request sets size, format and quality"
            )
        if name not in IDENTIFIER_OPTIONS:
            # A query string tolerates what it does not know; an identifier names one picture.
            raise InvalidParameter(
                f"{_shown(name)} is not a display option: "
                f"one of {', '.join(sorted(IDENTIFIER_OPTIONS))}"
            )
        if name in given:
            raise InvalidParameter(f"The option {name} is given twice")
        given[name] = value
    spec = display_spec(frame, given)
    return Identifier(frame, _canonical_options(frame, given, spec), spec)


def display_spec(frame: FrameRef, options: Mapping[str, str]) -> ThumbnailSpec:
    """The thumbnail route's parse of `options`: the one parser of display options."""
    return ThumbnailSpec.from_query(str(frame), options)


def _canonical_options(
    frame: FrameRef, given: Mapping[str, str], spec: ThumbnailSpec
) -> tuple[tuple[str, str], ...]:
    """Sorted by name, each value in one spelling, and the defaults dropped.

    The spelling: booleans `true`/`false`, choices in lower case by their own names (a colour
    map's alias by the map's name), numbers in their shortest form (`255`, `0.5`). An option
    is dropped when removing it draws the same picture (`color=false`, `percentile=90`
    without `median`, `a=0.1` with `stretch=asinh`), except a stretch, which is kept unless it
    is the default one: `stretch=linear` beside cuts (which imply it) stays as given, so that
    the options a caller spells out sorted and in this spelling are their own canonical form.
    """
    drawn = spec.rendering_parameters()
    spelled = {name: _spelling(name, value) for name, value in given.items()}
    kept = dict(spelled)
    for name in sorted(spelled):
        if name == "stretch" and spelled[name] != Stretch.FITS2IMAGE.value:
            continue
        rest = {k: v for k, v in kept.items() if k != name}
        if _same(frame, rest, drawn):
            del kept[name]
    return tuple(sorted(kept.items()))


def _spelling(name: str, value: str) -> str:
    """One option's value in its canonical spelling (the value itself when it has no other)."""
    word = value.strip().lower()
    if name in _CHOICES:
        if name == "cmap" and word in COLOUR_MAP_ALIASES:
            return COLOUR_MAP_ALIASES[word].value
        return word
    if name in _NUMBERS:
        try:
            number = float(word)
        except ValueError:
            return word
        if not math.isfinite(number):
            return word
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    boolean = parse_boolean(word)
    if boolean is not None:
        return "true" if boolean else "false"
    return word


_CHOICES = frozenset({"stretch", "interval", "cmap"})
_NUMBERS = frozenset({"a", "power", "percentile", "contrast", "min_cut", "max_cut"})


def _same(frame: FrameRef, options: Mapping[str, str], drawn: dict[str, object]) -> bool:
    try:
        return display_spec(frame, options).rendering_parameters() == drawn
    except InvalidParameter:
        return False


# ---- info.json ---------------------------------------------------------------------------------


def scale_factors(width: int, height: int, tile: int = TILE_SIZE) -> list[int]:
    """Powers of two from 1 until one tile holds the whole picture (OpenSeadragon's levels)."""
    factors = [1]
    while max(width, height) > tile * factors[-1]:
        factors.append(factors[-1] * 2)
    return factors


def level_sizes(width: int, height: int, tile: int = TILE_SIZE) -> list[tuple[int, int]]:
    """The picture's size at each scale factor, smallest first (info.json's `sizes`)."""
    return [
        (math.ceil(width / s), math.ceil(height / s))
        for s in reversed(scale_factors(width, height, tile))
    ]


def tile_region(
    column: int, row: int, factor: int, width: int, height: int, tile: int = TILE_SIZE
) -> tuple[Box, tuple[int, int]]:
    """Tile (column, row) at `factor`: the region it covers, clipped to the picture, and the
    size it is drawn at (IIIF implementation notes, section 3)."""
    x, y = column * tile * factor, row * tile * factor
    if x >= width or y >= height:
        raise ValueError(f"tile {column},{row} at {factor} lies outside {width}x{height}")
    w, h = min(tile * factor, width - x), min(tile * factor, height - y)
    return Box(x, y, w, h), (math.ceil(w / factor), math.ceil(h / factor))


def tile_count(width: int, height: int, tile: int = TILE_SIZE) -> int:
    """How many tiles every level together holds."""
    return sum(
        math.ceil(width / (tile * s)) * math.ceil(height / (tile * s))
        for s in scale_factors(width, height, tile)
    )


def info(
    service_id: str,
    width: int,
    height: int,
    limits: Limits,
    *,
    color: bool,
    tile: int = TILE_SIZE,
) -> dict[str, object]:
    """info.json for a `width` x `height` picture at `service_id` (its public base URI)."""
    qualities = ["color", "gray", "bitonal"] if color else ["gray", "bitonal"]
    return {
        "@context": CONTEXT,
        "id": service_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": PROFILE,
        "width": width,
        "height": height,
        "maxWidth": limits.max_width,
        "maxHeight": limits.max_height,
        "maxArea": limits.max_area,
        "sizes": [{"width": w, "height": h} for w, h in level_sizes(width, height, tile)],
        "tiles": [
            {"width": tile, "height": tile, "scaleFactors": scale_factors(width, height, tile)}
        ],
        "extraQualities": qualities,
        "extraFormats": ["png", "webp"],
        "extraFeatures": ["mirroring", "sizeUpscaling"],
    }


def limits_for(width: int, height: int) -> Limits:
    """Nothing is drawn larger than the picture itself (upscaling with `^` up to that)."""
    return Limits(width, height, width * height)


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(0, round(width * scale)), max(0, round(height * scale))


def _shown(text: str) -> str:
    """A piece of the URL as a message may show it: short, printable."""
    clean = "".join(ch for ch in text if ch.isprintable())
    return repr(clean[:40] + ("..." if len(clean) > 40 else ""))
