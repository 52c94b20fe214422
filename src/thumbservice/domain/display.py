"""How a frame's values become pixels: the stretch, the interval, the colour map (DisplayOptions).

The names and meanings are astropy.visualization's (and CDS hips2fits' where they overlap):
an interval maps the data to [0, 1] (`ZScaleInterval`, `MinMaxInterval`, `PercentileInterval`,
`ManualInterval`), a stretch maps [0, 1] to [0, 1] (`LinearStretch`, `SqrtStretch`,
`LogStretch(a)`, `AsinhStretch(a)`, `PowerStretch(a)`, `SinhStretch(a)`, `SquaredStretch`,
`HistEqStretch`), and the 8-bit value is `floor(255 * stretched)` as `make_rgb` makes it. A
colour map then colours the 8-bit grey levels.

The default is none of these: it is fits2image's own picture (`stretch=fits2image`: its zscale
limits from the median up, its gamma of 2.5, `median`/`percentile` as before), and its
options are empty, so that today's cache keys stay what they are.

Parsing is a pure function of name -> value pairs (`DisplayOptions.from_mapping`), used for a
query string and for any other source of the same names. Values are read case-insensitively
and normalised: a default spelled out, or a parameter that cannot change the picture, leaves
the options as if it were absent, so equal requests share one key (`as_pairs`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from thumbservice.domain.errors import InvalidParameter
from thumbservice.domain.words import parse_boolean


class Stretch(StrEnum):
    """How [0, 1] maps to [0, 1], as astropy.visualization's stretches of the same name."""

    FITS2IMAGE = "fits2image"
    LINEAR = "linear"
    SQRT = "sqrt"
    LOG = "log"
    ASINH = "asinh"
    POWER = "power"
    SINH = "sinh"
    SQUARED = "squared"
    HISTEQ = "histeq"


class Interval(StrEnum):
    """Which data values map to 0 and 1, as astropy.visualization's intervals."""

    ZSCALE = "zscale"
    MINMAX = "minmax"
    PERCENTILE = "percentile"
    MANUAL = "manual"


class ColourMap(StrEnum):
    """The colour maps a black-and-white thumbnail can be drawn with (grey: none).

    The renderer takes their colours from the `cmap` library; the names are the ones people
    know from matplotlib and DS9 (`heat`, `cool` and `rainbow` are DS9's equivalents).
    """

    GREY = "grey"
    VIRIDIS = "viridis"
    MAGMA = "magma"
    INFERNO = "inferno"
    PLASMA = "plasma"
    CIVIDIS = "cividis"
    HEAT = "heat"
    COOL = "cool"
    RAINBOW = "rainbow"
    HOT = "hot"
    CUBEHELIX = "cubehelix"
    TURBO = "turbo"


COLOUR_MAP_ALIASES = {"gray": ColourMap.GREY, "greys": ColourMap.GREY, "grays": ColourMap.GREY}

STRETCH_A = {Stretch.LOG: 1000.0, Stretch.ASINH: 0.1, Stretch.SINH: 1.0 / 3.0}
"""The stretches that take `a`, with astropy's defaults (`LogStretch`, `AsinhStretch`,
`SinhStretch`)."""

DEFAULT_POWER = 1.0
"""The exponent of `stretch=power` (astropy's `simple_norm(power=1.0)`)."""

DEFAULT_CONTRAST = 0.25
"""`ZScaleInterval`'s default contrast."""

DEFAULT_INTERVAL_PERCENTILE = 99.5
"""The share of pixels `interval=percentile` keeps, the same from both ends."""

MAX_STRETCH_A = 1e6
MIN_STRETCH_A = 1e-6
"""`a` beyond these overflows (sinh(1/a)) or is indistinguishable from its limit."""

MAX_POWER = 100.0
MIN_POWER = 0.01

NAMES = (
    "stretch",
    "a",
    "power",
    "interval",
    "percentile",
    "min_cut",
    "max_cut",
    "contrast",
    "cmap",
    "invert",
    "joint_interval",
)
"""Every parameter the options read (`percentile` only with `interval=percentile`)."""

_NUMBER = re.compile(
    r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,3})?"
)
_E = TypeVar("_E", bound=StrEnum)


def default_interval(stretch: Stretch) -> Interval | None:
    """The interval a stretch takes when none is asked for.

    fits2image's stretch has its own limits; `histeq` equalises the whole range, as astropy's
    `HistEqStretch` does (over the data's minimum and maximum); the others take zscale, the
    range astronomers' viewers start from.
    """
    if stretch is Stretch.FITS2IMAGE:
        return None
    if stretch is Stretch.HISTEQ:
        return Interval.MINMAX
    return Interval.ZSCALE


@dataclass(frozen=True)
class DisplayOptions:
    """The stretch, the interval and the colour map of a thumbnail, normalised.

    Every field holds its effective value (`a` is the stretch's default when not given), and
    fields that do not apply hold their defaults, so two equal pictures have equal options.
    """

    stretch: Stretch = Stretch.FITS2IMAGE
    a: float | None = None
    """`a` of log, asinh and sinh (None for the other stretches)."""
    power: float | None = None
    """The exponent of `stretch=power` (None for the other stretches)."""
    interval: Interval | None = None
    """None: fits2image's own limits, with `stretch=fits2image` only."""
    percentile: float | None = None
    """With `interval=percentile`: the share of pixels kept, in (0, 100]."""
    min_cut: float | None = None
    max_cut: float | None = None
    """With `interval=manual`: the data values drawn black and white (None: the data's own
    minimum or maximum, as astropy's `ManualInterval`)."""
    contrast: float | None = None
    """With `interval=zscale`: `ZScaleInterval`'s contrast, in (0, 1]."""
    cmap: ColourMap = ColourMap.GREY
    invert: bool = False
    joint_interval: bool = False
    """For color: one interval over the three channels together instead of one each."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> DisplayOptions:
        """Options from name -> value pairs (a query string, or `;name=value` pairs).

        Names outside `NAMES` are ignored. Raises InvalidParameter naming the parameter and
        what it allows.
        """
        given = {name: values[name].strip() for name in NAMES if name in values}
        given = {name: text for name, text in given.items() if text}
        interval_words = {"interval", "min_cut", "max_cut", "contrast"} & given.keys()

        if "stretch" in given:
            stretch = _choice("stretch", given["stretch"], Stretch)
        else:
            # Cuts without a stretch ask for the plain linear one, as astropy's default.
            stretch = Stretch.LINEAR if interval_words else Stretch.FITS2IMAGE

        a = power = None
        if "a" in given:
            if stretch not in STRETCH_A:
                raise InvalidParameter(
                    f"a is the constant of stretch=log, asinh or sinh, not of stretch={stretch}"
                    + (" (its exponent is power)" if stretch is Stretch.POWER else "")
                )
            a = _number("a", given["a"], low=MIN_STRETCH_A, high=MAX_STRETCH_A)
        if stretch in STRETCH_A and a is None:
            a = STRETCH_A[stretch]
        if "power" in given:
            if stretch is not Stretch.POWER:
                raise InvalidParameter(
                    f"power is the exponent of stretch=power, not of stretch={stretch}"
                )
            power = _number("power", given["power"], low=MIN_POWER, high=MAX_POWER)
        if stretch is Stretch.POWER and power is None:
            power = DEFAULT_POWER

        if stretch is Stretch.FITS2IMAGE:
            if interval_words:
                raise InvalidParameter(
                    f"{', '.join(sorted(interval_words))}: stretch=fits2image uses fits2image's "
                    "own limits; choose a stretch (linear, sqrt, log, asinh, power, sinh, "
                    "squared, histeq) to set an interval"
                )
            interval = None
        elif "interval" in given:
            interval = _choice("interval", given["interval"], Interval)
        elif {"min_cut", "max_cut"} & given.keys():
            interval = Interval.MANUAL
        elif "contrast" in given:
            interval = Interval.ZSCALE
        else:
            interval = default_interval(stretch)

        options = cls(
            stretch=stretch,
            a=a,
            power=power,
            interval=interval,
            cmap=_colour_map(given.get("cmap")),
            invert=_boolean("invert", given.get("invert")),
            joint_interval=_boolean("joint_interval", given.get("joint_interval")),
        )
        return options._with_interval(given)

    def _with_interval(self, given: Mapping[str, str]) -> DisplayOptions:
        interval = self.interval
        for name, wanted in (
            ("min_cut", Interval.MANUAL),
            ("max_cut", Interval.MANUAL),
            ("contrast", Interval.ZSCALE),
        ):
            if name in given and interval is not wanted:
                raise InvalidParameter(f"{name} is for interval={wanted}, not interval={interval}")
        percentile = min_cut = max_cut = contrast = None
        if interval is Interval.PERCENTILE:
            percentile = DEFAULT_INTERVAL_PERCENTILE
            if "percentile" in given:
                percentile = _number("percentile", given["percentile"])
                if not 0 < percentile <= 100:
                    raise InvalidParameter(
                        f"percentile must be in (0, 100], got {given['percentile']!r}"
                    )
        elif interval is Interval.ZSCALE:
            contrast = DEFAULT_CONTRAST
            if "contrast" in given:
                contrast = _number("contrast", given["contrast"])
                if not 0 < contrast <= 1:
                    raise InvalidParameter(f"contrast must be in (0, 1], got {given['contrast']!r}")
        elif interval is Interval.MANUAL:
            if "min_cut" in given:
                min_cut = _number("min_cut", given["min_cut"])
            if "max_cut" in given:
                max_cut = _number("max_cut", given["max_cut"])
            if min_cut is not None and max_cut is not None and min_cut >= max_cut:
                raise InvalidParameter(
                    f"min_cut must be below max_cut, got min_cut={min_cut:g} and "
                    f"max_cut={max_cut:g}"
                )
            if min_cut is None and max_cut is None:
                # ManualInterval() is the data's minimum and maximum.
                interval = Interval.MINMAX
        joint = self.joint_interval
        if joint and interval is None:
            raise InvalidParameter(
                "joint_interval needs an interval: stretch=fits2image scales each channel on "
                "its own"
            )
        if interval is Interval.MANUAL and min_cut is not None and max_cut is not None:
            joint = False  # the same cuts for every channel either way
        return replace(
            self,
            interval=interval,
            percentile=percentile,
            min_cut=min_cut,
            max_cut=max_cut,
            contrast=contrast,
            joint_interval=joint,
        )

    @property
    def is_default(self) -> bool:
        """Whether this is fits2image's picture, exactly as without any option."""
        return self == DEFAULT_DISPLAY

    @property
    def scaling_is_default(self) -> bool:
        """Whether the 8-bit grey levels are fits2image's (a colour map or invert may follow)."""
        return self.scaling_only() == DEFAULT_DISPLAY

    def scaling_only(self) -> DisplayOptions:
        """These options without the colour map and invert: what the 8-bit grey picture of
        the frame depends on (the colours are a table applied to it afterwards)."""
        return replace(self, cmap=ColourMap.GREY, invert=False)

    def as_pairs(self) -> tuple[tuple[str, str], ...]:
        """The options that differ from the defaults, as (name, value) pairs sorted by name.

        `from_mapping(dict(options.as_pairs()))` gives the same options back; equal options
        give equal pairs, and the defaults give none.
        """
        pairs: dict[str, str] = {}
        if self.stretch is not Stretch.FITS2IMAGE:
            pairs["stretch"] = self.stretch.value
            if self.interval is not default_interval(self.stretch):
                assert self.interval is not None
                pairs["interval"] = self.interval.value
        if self.a is not None and self.a != STRETCH_A.get(self.stretch):
            pairs["a"] = _text(self.a)
        if self.power is not None and self.power != DEFAULT_POWER:
            pairs["power"] = _text(self.power)
        if self.percentile is not None and self.percentile != DEFAULT_INTERVAL_PERCENTILE:
            pairs["percentile"] = _text(self.percentile)
        if self.contrast is not None and self.contrast != DEFAULT_CONTRAST:
            pairs["contrast"] = _text(self.contrast)
        if self.min_cut is not None:
            pairs["min_cut"] = _text(self.min_cut)
        if self.max_cut is not None:
            pairs["max_cut"] = _text(self.max_cut)
        if self.cmap is not ColourMap.GREY:
            pairs["cmap"] = self.cmap.value
        if self.invert:
            pairs["invert"] = "true"
        if self.joint_interval:
            pairs["joint_interval"] = "true"
        if pairs.get("interval") == Interval.MANUAL.value:
            # Cuts name interval=manual on their own.
            del pairs["interval"]
        return tuple(sorted(pairs.items()))

    def canonical(self) -> str:
        """The pairs as one string, `name=value;name=value`: empty for the defaults."""
        return ";".join(f"{name}={value}" for name, value in self.as_pairs())


DEFAULT_DISPLAY = DisplayOptions()


def _text(value: float) -> str:
    """A number as the canonical text `float()` reads back exactly."""
    return repr(float(value))


def _choice(name: str, raw: str, kind: type[_E]) -> _E:
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidParameter(f"{name} must be one of {allowed}, got {raw!r}") from None


def _colour_map(raw: str | None) -> ColourMap:
    if raw is None:
        return ColourMap.GREY
    word = raw.strip().lower()
    if word in COLOUR_MAP_ALIASES:
        return COLOUR_MAP_ALIASES[word]
    return _choice("cmap", raw, ColourMap)


def _boolean(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    value = parse_boolean(raw)
    if value is not None:
        return value
    raise InvalidParameter(f"{name} must be true or false, got {raw!r}")


def _number(name: str, raw: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite decimal number in ASCII digits (a sign and an exponent allowed)."""
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        raise InvalidParameter(
            f"{name} must be a finite number written in digits (such as 0.5, -20 or 1e4), "
            f"got {raw!r}"
        )
    value = float(text)
    if not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number, got {raw!r}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value
