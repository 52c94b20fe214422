"""Settings from the environment, declared once each: name, default and check.

pydantic-settings reads the variables (case-insensitively, `AWS_BUCKET` is `aws_bucket`); the
validators below give each kind of value its one check. A bad value stops start-up with a
`ConfigError` naming the variable. The first nine are the original service's, with the same names
and defaults.
"""

from __future__ import annotations

import contextvars
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from thumbservice.domain.concurrency import DEFAULT_MAX_DOWNLOADS
from thumbservice.domain.errors import DEFAULT_RETRY_AFTER
from thumbservice.domain.frames import (
    DEFAULT_COLOR_CONFIGURATION_TYPES,
    DEFAULT_COLOR_FILTERS,
    DEFAULT_CONFIGURATION_TYPES,
    DEFAULT_REQUIRED_KEYS,
    parse_color_filters,
)
from thumbservice.domain.service import ONE_WEEK
from thumbservice.domain.spec import parse_boolean

DEFAULT_STORE_TIMEOUT = 3.0
"""Seconds the hot path (does it exist, read it) waits for the object store."""

PLACEHOLDER = "changeme"
"""The seed's placeholder for the bucket and the credentials: not a real value."""


class ConfigError(ValueError):
    """A variable of the environment has a value the service cannot use."""


def _whole_number(value: object) -> object:
    # int() would take "٣", "1_000" or " 7": a setting is written in ASCII digits only.
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be a whole number written in digits")
        return int(value)
    return value


def _seconds(value: object) -> object:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError("must be a number of seconds") from None
    return value


def _url(value: object) -> object:
    if isinstance(value, str) and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


def _optional_url(value: object) -> object:
    if isinstance(value, str) and value.lower() == "none":
        return None
    return _url(value)


def _boolean(value: object) -> object:
    if isinstance(value, str):
        parsed = parse_boolean(value)
        if parsed is None:
            raise ValueError("must be true or false")
        return parsed
    return value


def _names(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _at_least_one(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("must list at least one name")
    return value


MIN_RENDER_MEMORY = 128 * 1024 * 1024

_SIZE_UNITS = {
    "": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}


def _bytes(value: object) -> object:
    """A size: a number of bytes, or a number with K/KiB, M/MiB or G/GiB (powers of 1024)."""
    if isinstance(value, int) and value < 0:
        raise ValueError("must not be negative")
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = text[len(digits) :].strip()
    if not (digits.isascii() and digits.isdigit()) or unit not in _SIZE_UNITS:
        raise ValueError("must be a size in bytes, or such as 512MiB or 2GiB")
    return int(digits) * _SIZE_UNITS[unit]


def _memory_limit(value: object) -> object:
    """`auto` (the renderer's measured need), `off` or 0 (no limit), or a size."""
    if isinstance(value, str) and value.strip().lower() in ("auto", "off", "none"):
        return None if value.strip().lower() == "auto" else 0
    size = _bytes(value)
    if isinstance(size, int) and 0 < size < MIN_RENDER_MEMORY:
        raise ValueError("must be at least 128MiB (a worker holds about that once it has started)")
    return size


def _auto_count(value: object) -> object:
    """`auto` (None: the code's own choice) or a whole number."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return _whole_number(value)


def _metrics_port(value: object) -> object:
    """`main` (the service's own port), `off`, or a port number of its own."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("main", "off"):
            return word
        if not (word.isascii() and word.isdigit()):
            raise ValueError("must be main, off or a port number")
        return int(word)
    return value


def _lease_prefix(value: str) -> str:
    """A folder of the bucket of its own (`leases/`), for a lifecycle rule to name."""
    value = value.strip("/") + "/"
    if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/", value) or ".." in value:
        raise ValueError("must be a folder name such as leases/ (letters, digits, . _ - and /)")
    return value


def _color_filters(value: object) -> object:
    return parse_color_filters(value) if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _slash(value: str) -> str:
    return value if value.endswith("/") else value + "/"


Count = Annotated[int, BeforeValidator(_whole_number)]
Bytes = Annotated[int, BeforeValidator(_bytes), Field(ge=0)]
Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0, allow_inf_nan=False)]
Url = Annotated[str, BeforeValidator(_url)]
OptionalUrl = Annotated[str | None, BeforeValidator(_optional_url)]
Flag = Annotated[bool, BeforeValidator(_boolean)]
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]
SomeNames = Annotated[Names, AfterValidator(_at_least_one)]
ColorFilters = Annotated[dict[str, tuple[str, ...]], NoDecode, BeforeValidator(_color_filters)]

_ENVIRONMENT: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "thumbservice_environment", default=None
)


class _Environment(EnvSettingsSource):
    """The variables `Settings.from_env` was given; none at all for `Settings(...)` in code."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENVIRONMENT.get()
        if env is None:
            return {}
        return parse_env_vars(env, False, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, env_ignore_empty=True, extra="ignore", frozen=True
    )

    # The original service's nine, same names and defaults.
    archive_api_url: Annotated[Url, AfterValidator(_slash)] = "http://localhost/"
    tmp_dir: Path = Path("/tmp/")
    aws_bucket: str = PLACEHOLDER
    aws_access_key_id: str = PLACEHOLDER
    aws_secret_access_key: str = Field(default=PLACEHOLDER, repr=False)
    storage_url: OptionalUrl = None
    required_frame_validation_keys: Names = DEFAULT_REQUIRED_KEYS
    valid_configuration_types: SomeNames = DEFAULT_CONFIGURATION_TYPES
    valid_configuration_types_for_color_thumbs: SomeNames = DEFAULT_COLOR_CONFIGURATION_TYPES

    # Where things are.
    aws_default_region: str = "us-east-1"
    thumbnail_store: Annotated[Literal["auto", "s3", "local"], BeforeValidator(_lower)] = "auto"
    local_store_dir: Path = Path("var/thumbnails")
    local_store_secret: str = Field(default_factory=lambda: secrets.token_hex(32), repr=False)
    public_url: OptionalUrl = None
    # The store's endpoint as clients reach it, for the URLs handed out only (None: STORAGE_URL).
    storage_public_url: OptionalUrl = None
    archive_source: Annotated[Literal["http", "samples"], BeforeValidator(_lower)] = "http"
    sample_archive_dir: Path = Path("var/sample-archive")
    host: str = "0.0.0.0"
    port: Annotated[Count, Field(ge=0, le=65535)] = 8080
    # /metrics: on the service's port (main), on a port of its own, or nowhere (off).
    metrics_port: Annotated[
        Literal["main", "off"] | Annotated[int, Field(ge=1, le=65535)],
        BeforeValidator(_metrics_port),
    ] = "main"

    # Color composites.
    color_filters: ColorFilters = Field(default_factory=lambda: dict(DEFAULT_COLOR_FILTERS))
    color_alignment: Flag = True

    # Time limits, in seconds.
    archive_timeout: Seconds = 10.0
    archive_list_timeout: Seconds = 30.0
    download_timeout: Seconds = 60.0
    request_deadline: Seconds = 120.0
    render_timeout: Seconds = 300.0
    readiness_cache_seconds: Annotated[float, BeforeValidator(_seconds), Field(ge=0)] = 5.0
    store_timeout: Seconds = DEFAULT_STORE_TIMEOUT
    cache_existence_ttl: Annotated[float, BeforeValidator(_seconds), Field(ge=0)] = 3600.0
    shutdown_timeout: Seconds = 30.0
    header_timeout: Seconds = 10.0
    keepalive_timeout: Seconds = 75.0
    send_timeout: Seconds = 30.0

    # Rendering.
    renderer: Annotated[Literal["fast", "fits2image"], BeforeValidator(_lower)] = "fast"
    # None: the renderer's measured need; 0: no limit.
    render_memory_limit: Annotated[int | None, BeforeValidator(_memory_limit)] = None

    # The frame cache: each frame's full-resolution picture, kept for its further views.
    frame_cache_bytes: Bytes = 1024 * 1024 * 1024
    # None: TMP_DIR.
    frame_cache_dir: Path | None = None

    # Limits and work.
    max_thumbnail_size: Annotated[Count, Field(ge=1)] = 5000
    max_download_bytes: Annotated[Bytes, Field(ge=1)] = 512 * 1024 * 1024
    max_image_pixels: Annotated[Count, Field(ge=1)] = 64 * 1024 * 1024
    render_workers: Annotated[Count, Field(ge=1, le=256)] = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1)
    )
    render_queue_depth: Annotated[Count, Field(ge=0)] = 8
    max_downloads: Annotated[Count, Field(ge=1)] = DEFAULT_MAX_DOWNLOADS
    retry_after: Annotated[Count, Field(ge=1)] = DEFAULT_RETRY_AFTER
    url_expiry: Annotated[Count, Field(ge=1, le=ONE_WEEK)] = ONE_WEEK
    memory_cache_bytes: Bytes = 64 * 1024 * 1024
    archive_max_answer_bytes: Annotated[Bytes, Field(ge=1024)] = 8 * 1024 * 1024
    archive_calls_per_frame: Annotated[Count, Field(ge=1)] = 4
    # None: half the process's file limit (entrypoints/server.py).
    max_connections: Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_auto_count)] = (
        None
    )

    # Deep zoom (IIIF): an archive answer reused for the same caller and frame (0: never), a
    # frame's files kept after its last view, the proxy's X-Forwarded-Proto/-Host trusted for
    # info.json's `id` when PUBLIC_URL is not set, and the views admitted at once.
    iiif_archive_reuse_seconds: Annotated[float, BeforeValidator(_seconds), Field(ge=0)] = 5.0
    iiif_frame_linger_seconds: Annotated[float, BeforeValidator(_seconds), Field(ge=0)] = 10.0
    trust_forwarded_headers: Flag = False
    iiif_queue_depth: Annotated[Count, Field(ge=1)] = 64

    # Logs.
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = (
        "INFO"
    )
    log_format: Annotated[Literal["json", "console"], BeforeValidator(_lower)] = "json"

    # Leases: one render across replicas (README, "Running more than one replica").
    leases: Annotated[Literal["auto", "s3", "local", "off"], BeforeValidator(_lower)] = "auto"
    lease_ttl: Seconds = 30.0
    lease_prefix: Annotated[str, AfterValidator(_lease_prefix)] = "leases/"

    @model_validator(mode="before")
    @classmethod
    def _unquote(cls, data: Any) -> Any:
        """Values may be written as in the seed README ('/tmp/'); an empty one means the default."""
        if not isinstance(data, dict):
            return data
        cleaned = {}
        for name, value in data.items():
            if isinstance(value, str):
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1].strip()
                if value == "":
                    continue
            cleaned[name] = value
        return cleaned

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> Settings:
        if self.thumbnail_store == "s3" and self.aws_bucket in ("", PLACEHOLDER):
            raise ValueError("AWS_BUCKET must name a real bucket when THUMBNAIL_STORE=s3")
        return self

    @model_validator(mode="after")
    def _leases_in_the_chosen_store(self) -> Settings:
        if self.leases in ("s3", "local") and self.leases != self.store_kind:
            raise ValueError(
                f"LEASES={self.leases} needs the {self.leases} thumbnail store, "
                f"but the store is {self.store_kind}"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _Environment(settings_cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of this process's environment (or of `env`); ConfigError if one is bad."""
        token = _ENVIRONMENT.set(os.environ if env is None else env)
        try:
            return cls()
        except ValidationError as err:
            raise ConfigError(_describe(err)) from None
        finally:
            _ENVIRONMENT.reset(token)

    @property
    def store_kind(self) -> str:
        """`s3` whenever a real bucket is named (not the seed's placeholder), else `local`."""
        if self.thumbnail_store != "auto":
            return self.thumbnail_store
        return "s3" if self.aws_bucket and self.aws_bucket != PLACEHOLDER else "local"

    @property
    def lease_kind(self) -> str | None:
        """Where leases are kept (the thumbnail store's kind), or None with LEASES=off."""
        return None if self.leases == "off" else self.store_kind

    @property
    def base_url(self) -> str:
        """Where this service is reached from outside, for the URLs of the local store."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def _describe(err: ValidationError) -> str:
    """One line per bad variable, each naming it as it is written in the environment."""
    lines = []
    for problem in err.errors(include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["loc"]:
            name = str(problem["loc"][0]).upper()
            lines.append(f"{name} {message}, got {problem.get('input')!r}")
        else:
            lines.append(message)
    return "; ".join(lines)
